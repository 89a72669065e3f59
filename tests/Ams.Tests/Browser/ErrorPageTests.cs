using Ams.Tests.Support;

namespace Ams.Tests.Browser;

/// <summary>Issue 17 item 8: browser routes answer errors with an HTML page, API routes with problem JSON.</summary>
public sealed class ErrorPageTests(Services services) : IClassFixture<Services>
{
    [Theory]
    [InlineData(null)]
    [InlineData("text/html")]
    [InlineData("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")]
    public async Task A_conversation_that_is_not_yours_is_an_HTML_404_page(string? accept)
    {
        var (browser, _) = await Browser.SignedInAsync(services);
        var result = await browser.GetAsync("/c/999999999", 404, accept: accept);
        Assert.StartsWith("text/html", result.Context.Response.ContentType);
        var html = await result.ReadAsTextAsync();
        Assert.Contains("<h1>Conversation not found</h1>", html);
        Assert.Contains("href=\"/\"", html);
        Assert.DoesNotContain("\"status\"", html);
    }

    [Fact]
    public async Task An_unknown_browser_path_is_an_HTML_404_page()
    {
        var (browser, _) = await Browser.SignedInAsync(services);
        var result = await browser.GetAsync("/no/such/page", 404, accept: "text/html");
        Assert.StartsWith("text/html", result.Context.Response.ContentType);
        Assert.Contains("<h1>Page not found</h1>", await result.ReadAsTextAsync());
    }

    [Theory]
    [InlineData(null)]
    [InlineData("text/html")]
    public async Task The_API_keeps_answering_with_problem_JSON(string? accept)
    {
        var (browser, _) = await Browser.SignedInAsync(services);
        var result = await browser.GetAsync("/api/conversations/999999999", 404, accept: accept);
        Assert.Equal("application/problem+json; charset=utf-8", result.Context.Response.ContentType);
        await result.ProblemAsync(404);
        var unknown = await browser.GetAsync("/api/no/such/call", 404, accept: accept);
        Assert.Equal("application/problem+json; charset=utf-8", unknown.Context.Response.ContentType);
    }
}
