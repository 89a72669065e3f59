using Ams.Tests.Support;

namespace Ams.Tests.Browser;

/// <summary>Details of the cookie flow that mutation testing found unpinned (docs/quality.md).</summary>
public sealed partial class CookieFlowTests
{
    [Fact]
    public async Task The_pre_session_cookie_gets_the_Host_prefix_only_over_HTTPS()
    {
        var app = await services.AppAsync();
        var plain = new Browser(app);
        await plain.GetAsync("/login");
        var cookie = Assert.Single(plain.LastSetCookies, c => c.Contains("ams_csrf="));
        Assert.StartsWith("ams_csrf=", cookie);   // a browser drops a __Host- cookie that is not Secure

        var secure = new Browser(app, https: true);
        await secure.GetAsync("/login");
        cookie = Assert.Single(secure.LastSetCookies, c => c.Contains("ams_csrf="));
        Assert.StartsWith("__Host-ams_csrf=", cookie);
        Assert.Contains("secure", cookie, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task A_form_post_may_carry_the_token_in_the_header_as_htmx_does()
    {
        var app = await services.AppAsync();
        var name = Api.UniqueName("hdr");
        await app.RegisterAsync(name);
        var browser = new Browser(app);
        await browser.GetAsync("/login");
        await browser.PostFormAsync("/login", new() { ["username"] = name, ["password"] = Api.Password }, 303, tokenInHeader: true);
        Assert.True(browser.Has("ams_session"));
    }

    [Fact]
    public async Task A_bearer_token_is_used_before_the_session_cookie()
    {
        var (browser, cookieUser) = await Browser.SignedInAsync(services);
        var app = await services.AppAsync();
        var bearerUser = Api.UniqueName("bearer");
        await app.RegisterAsync(bearerUser);
        var token = await app.LoginAsync(bearerUser);
        var me = await browser.GetAsync("/api/me", bearer: token);
        Assert.Equal(bearerUser, (await me.JsonAsync())["username"]!.GetValue<string>());
        Assert.NotEqual(cookieUser, bearerUser);
    }

    [Fact]
    public async Task An_unauthenticated_API_call_is_told_how_to_authenticate()
    {
        var app = await services.AppAsync();
        var result = await app.Scenario(s =>
        {
            s.Get.Url("/api/me");
            s.StatusCodeShouldBe(401);
        });
        Assert.Equal("Bearer", result.Context.Response.Headers.WWWAuthenticate.ToString());
        var problem = await result.ProblemAsync(401);
        Assert.Equal("Authentication required", problem["title"]!.GetValue<string>());
        Assert.Equal("Send a valid session token as 'Authorization: Bearer <token>' or sign in.", problem["detail"]!.GetValue<string>());
    }

    [Fact]
    public async Task The_two_factor_pages_are_HTML_pages_and_the_settings_need_a_session()
    {
        var app = await services.AppAsync();
        var anonymous = await new Browser(app).GetAsync("/settings/2fa", 302);
        Assert.Equal("/login", anonymous.Context.Response.Headers.Location.ToString());

        var (browser, _) = await Browser.SignedInAsync(services);
        foreach (var url in new[] { "/settings/2fa", "/login/2fa" })
        {
            var page = await browser.GetAsync(url);
            Assert.Equal("text/html; charset=utf-8", page.Context.Response.ContentType);
            Assert.Contains("<title>Two-factor authentication · AMS</title>", await page.ReadAsTextAsync());
        }
    }
}
