using Ams.Tests.Attachments;
using Ams.Tests.Messaging;
using Ams.Tests.Support;

namespace Ams.Tests.Platform;

/// <summary>RFC 9110 §9.3.2: HEAD answers as GET would, without the body (which Kestrel leaves out: see the smoke test).</summary>
public sealed class HeadRequestTests(Services services) : IClassFixture<Services>
{
    [Fact]
    public async Task Every_GET_route_answers_HEAD_with_the_GETs_status_and_headers()
    {
        var app = await services.AppAsync();
        var alice = await app.MemberAsync("hd");
        var bob = await app.MemberAsync("hd");
        var direct = await app.DirectAsync(alice, bob);
        var file = (await app.UploadAsync(alice, [1, 2, 3, 4, 5])).Id();
        await app.SendWithAsync(alice, direct.Id(), "with a file", file);

        async Task<HttpResponseMessage> SendAsync(HttpMethod method, string url, string? token)
        {
            using var client = app.Server.CreateClient();
            using var request = new HttpRequestMessage(method, url);
            if (token is not null) request.Headers.Authorization = new("Bearer", token);
            return await client.SendAsync(request);
        }

        foreach (var (url, token) in new[] { ("/api/me", alice.Token), ("/api/version", null), ("/openapi.json", null), ("/healthz", null), ("/livez", null), ($"/api/attachments/{file}", bob.Token),
                     ($"/api/conversations/{direct.Id()}/messages", alice.Token), ("/api/me", null), ("/api/conversations/999999", alice.Token) })
        {
            using var get = await SendAsync(HttpMethod.Get, url, token);
            using var head = await SendAsync(HttpMethod.Head, url, token);
            Assert.Equal((url, get.StatusCode), (url, head.StatusCode));
            Assert.Equal(get.Content.Headers.ContentType?.MediaType, head.Content.Headers.ContentType?.MediaType);
        }
        using var download = await SendAsync(HttpMethod.Head, $"/api/attachments/{file}", bob.Token);
        Assert.Equal(5, download.Content.Headers.ContentLength);
        Assert.NotNull(download.Headers.ETag);
        // A route without GET still says which methods it takes.
        using var postOnly = await SendAsync(HttpMethod.Head, "/api/messages", alice.Token);
        Assert.Equal(405, (int)postOnly.StatusCode);
        Assert.Contains("POST", postOnly.Content.Headers.Allow);
        // And a GET route's 405 says HEAD is taken as well.
        using var getOnly = await SendAsync(HttpMethod.Post, "/api/version", null);
        Assert.Equal(405, (int)getOnly.StatusCode);
        Assert.Equal(["GET", "HEAD"], getOnly.Content.Headers.Allow.Order());
    }

    // A method the path does not take is a 405 naming the ones it does, and a path that is nothing
    // a 404, with or without a browser's cookie: the anti-forgery check answered both 403, as if
    // something had been refused for want of a token. A route's own write still needs the token.
    [Theory]
    [InlineData("PUT", "/login", 405, "GET, HEAD, POST")]
    [InlineData("TRACE", "/", 405, "GET, HEAD")]
    [InlineData("DELETE", "/c/1", 405, "GET, HEAD")]
    [InlineData("PATCH", "/settings", 405, "GET, HEAD")]
    [InlineData("TRACE", "/app.js", 405, "GET, HEAD")]
    [InlineData("OPTIONS", "/app.css", 405, "GET, HEAD")]
    [InlineData("PUT", "/no/such/page", 404, null)]
    [InlineData("POST", "/app.js", 405, "GET, HEAD")]
    [InlineData("POST", "/login", 403, null)]
    public async Task A_method_or_path_nothing_takes_is_405_or_404_and_not_an_anti_forgery_refusal(string method, string url, int status, string? allow)
    {
        var app = await services.AppAsync();
        foreach (var cookie in new[] { null, "ams_session=ams_" + new string('a', 43) })
        {
            using var client = app.Server.CreateClient();
            using var request = new HttpRequestMessage(new HttpMethod(method), url);
            if (cookie is not null) request.Headers.Add("Cookie", cookie);
            using var response = await client.SendAsync(request);
            Assert.Equal((url, cookie, status), (url, cookie, (int)response.StatusCode));
            if (allow is not null) Assert.Equal(allow.Split(", "), response.Content.Headers.Allow.Order());
            Assert.StartsWith("application/problem+json", response.Content.Headers.ContentType?.ToString());
        }
    }

    [Fact]
    public async Task HEAD_on_an_event_stream_gets_its_headers_and_ends_instead_of_streaming()
    {
        var app = await services.AppAsync();
        var alice = await app.MemberAsync("hd");
        foreach (var url in new[] { "/api/events", "/events" })
        {
            using var client = app.Server.CreateClient();
            using var request = new HttpRequestMessage(HttpMethod.Head, url);
            request.Headers.Authorization = new("Bearer", alice.Token);
            // A stream never ends by itself: only an answer that ends gets its content read within this.
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(15));
            using var head = await client.SendAsync(request, HttpCompletionOption.ResponseContentRead, timeout.Token);
            Assert.Equal((url, 200), (url, (int)head.StatusCode));
            Assert.Equal("text/event-stream", head.Content.Headers.ContentType?.MediaType);
            Assert.Empty(await head.Content.ReadAsByteArrayAsync(timeout.Token));
        }
    }
}
