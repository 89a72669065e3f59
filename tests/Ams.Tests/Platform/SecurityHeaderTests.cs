using Ams.Tests.Support;

namespace Ams.Tests.Platform;

public sealed class SecurityHeaderTests(Services services) : IClassFixture<Services>
{
    [Theory]
    [InlineData("GET", "/healthz", 200)]
    [InlineData("GET", "/login", 200)]
    [InlineData("GET", "/register", 200)]
    [InlineData("GET", "/app.css", 200)]
    [InlineData("GET", "/htmx.min.js", 200)]
    [InlineData("GET", "/api/me", 401)]
    [InlineData("GET", "/no/such/page", 404)]
    [InlineData("DELETE", "/api/login", 405)]
    public async Task Every_response_carries_the_security_headers(string method, string url, int status)
    {
        var app = await services.AppAsync();
        var result = await app.Scenario(s =>
        {
            if (method == "GET") s.Get.Url(url); else s.Delete.Url(url);
            s.StatusCodeShouldBe(status);
        });
        var headers = result.Context.Response.Headers;
        var csp = headers.ContentSecurityPolicy.ToString();
        Assert.Contains("default-src 'none'", csp);
        Assert.Contains("script-src 'self'", csp);
        Assert.Contains("frame-ancestors 'none'", csp);
        Assert.DoesNotContain("unsafe-inline", csp);
        Assert.DoesNotContain("unsafe-eval", csp);
        Assert.Equal("nosniff", headers.XContentTypeOptions.ToString());
        Assert.Equal("DENY", headers.XFrameOptions.ToString());
        Assert.Equal("no-referrer", headers["Referrer-Policy"].ToString());
        if (url.StartsWith("/api") || url.StartsWith("/healthz")) Assert.Equal("no-store", headers.CacheControl.ToString());
        if (status >= 400) await result.ProblemAsync(status);
    }

    [Fact]
    public async Task Pages_have_no_inline_script_or_style()
    {
        var app = await services.AppAsync();
        foreach (var url in new[] { "/login", "/register" })
        {
            var html = await (await app.Scenario(s => s.Get.Url(url))).ReadAsTextAsync();
            Assert.DoesNotMatch("<script(?![^>]*\\bsrc=)", html);
            Assert.DoesNotContain("<style", html);
            Assert.DoesNotContain(" style=", html);
            Assert.DoesNotMatch(" on[a-z]+=", html);
            Assert.Contains("name=\"_csrf\"", html);
        }
    }

    [Fact]
    public async Task HSTS_is_sent_over_HTTPS_only()
    {
        var app = await services.AppAsync();
        var secure = await app.Scenario(s =>
        {
            s.Get.Url("/login");
            s.ConfigureHttpContext(c => c.Request.Scheme = "https");
        });
        Assert.Equal("max-age=31536000; includeSubDomains", secure.Context.Response.Headers.StrictTransportSecurity.ToString());
        var plain = await app.Scenario(s => s.Get.Url("/login"));
        Assert.False(plain.Context.Response.Headers.ContainsKey("Strict-Transport-Security"));
    }
}
