using System.Net;
using Ams.Tests.Messaging;
using Ams.Tests.Support;

namespace Ams.Tests.Browser;

/// <summary>
/// A use case's JSON call and its browser form run one handler: the same validator (messages
/// that only the validator knows come back through both) and the same throttle answers.
/// </summary>
public sealed class FormAndApiTests(Services services) : IClassFixture<Services>
{
    /// <summary>
    /// Sends the same invalid input to the API and to the form; asserts that the form shows the
    /// message of the API's problem, and returns both.
    /// </summary>
    static async Task<(string Reason, string Html)> BothAsync(IAlbaHost app, string apiUrl, object json, string? bearer,
        Browser browser, string formUrl, Dictionary<string, string> form)
    {
        var api = await app.Scenario(s =>
        {
            s.Post.Json(json).ToUrl(apiUrl);
            if (bearer is not null) s.WithRequestHeader("Authorization", $"Bearer {bearer}");
            s.StatusCodeShouldBe(400);
        });
        var reason = Assert.Single((await api.ProblemAsync(400))["errors"]!.AsArray())!["reason"]!.GetValue<string>();
        var html = await (await browser.PostFormAsync(formUrl, form, 422, htmx: true)).ReadAsTextAsync();
        Assert.Contains("role=\"alert\"", html);
        Assert.Contains(WebUtility.HtmlEncode(reason), html);
        return (reason, html);
    }

    [Fact]
    public async Task A_send_refused_to_a_plain_form_post_is_a_page_that_leads_back_and_the_composers_fetch_gets_problem_details()
    {
        var (browser, name) = await Browser.SignedInAsync(services);
        var app = await services.AppAsync();
        var direct = (await app.DirectAsync(new Member(name, await app.LoginAsync(name), name), await app.MemberAsync("fb"))).Id();
        await browser.GetAsync($"/c/{direct}");

        // A browser without script posts the composer's form itself: the refusal is a page, not JSON.
        var empty = await browser.PostFormAsync($"/c/{direct}/send", new() { ["body"] = " " }, 400);
        Assert.StartsWith("text/html", empty.Context.Response.ContentType);
        var page = await empty.ReadAsTextAsync();
        Assert.Contains("<!doctype html>", page);
        Assert.Contains("role=\"alert\"", page);
        Assert.Contains("Body must not be empty", page);
        Assert.Contains($"<a href=\"/c/{direct}\">Back to the conversation</a>", page);
        var missing = await browser.PostFormAsync("/c/999999999/send", new() { ["body"] = "hi" }, 404);
        Assert.Contains("Conversation not found", await missing.ReadAsTextAsync());
        Assert.StartsWith("text/html", missing.Context.Response.ContentType);

        // app.js's fetch shows the problem's words in the composer.
        browser.Headers["X-Requested-With"] = "fetch";
        var fetched = await browser.PostFormAsync($"/c/{direct}/send", new() { ["body"] = " " }, 400);
        Assert.StartsWith("application/problem+json", fetched.Context.Response.ContentType);
        Assert.StartsWith("Body must not be empty", (await fetched.ProblemAsync(400))["title"]!.GetValue<string>());
    }

    [Fact]
    public async Task Register_refuses_a_common_password_with_the_same_message_through_the_API_and_the_form()
    {
        var app = await services.AppAsync();
        var browser = new Browser(app);
        await browser.GetAsync("/register");
        // The page's inputs accept it (12+ characters); only the validator knows the list.
        const string common = "1qaz2wsx3edc";
        var (reason, _) = await BothAsync(app, "/api/register", new { username = Api.UniqueName(), password = common }, null,
            browser, "/register", new() { ["username"] = Api.UniqueName(), ["password"] = common });
        Assert.Equal("This password is on the list of commonly used passwords; choose another.", reason);
    }

    [Fact]
    public async Task Creating_a_conversation_over_the_member_limit_gives_the_same_message_through_the_API_and_the_form()
    {
        var (browser, _) = await Browser.SignedInAsync(services);
        await browser.GetAsync("/c/new");
        var app = await services.AppAsync();
        var token = await app.NewUserTokenAsync("cv");
        var names = Enumerable.Range(0, 257).Select(i => $"someone{i}").ToList();
        var (reason, html) = await BothAsync(app, "/api/conversations", new { members = names }, token,
            browser, "/c/new", new() { ["members"] = string.Join(", ", names) });
        Assert.Equal("A conversation has at most 256 members.", reason);
        Assert.StartsWith("<form id=\"new-chat\"", html.Trim());
    }

    [Fact]
    public async Task A_refused_new_chat_form_keeps_what_was_typed_HTML_encoded()
    {
        var (browser, _) = await Browser.SignedInAsync(services);
        await browser.GetAsync("/c/new");
        var html = await (await browser.PostFormAsync("/c/new",
            new() { ["members"] = "nosuchuserq1 , nosuchuserq2", ["title"] = "My \"planning\" <group>" }, 404, htmx: true)).ReadAsTextAsync();
        Assert.Contains("There is no user &#x27;nosuchuserq1&#x27;.", html);
        Assert.Contains("value=\"nosuchuserq1, nosuchuserq2\"", html);
        Assert.Contains("value=\"My &quot;planning&quot; &lt;group&gt;\"", html);
    }

    [Fact]
    public async Task The_two_factor_forms_run_the_validator_as_the_API_does()
    {
        var (browser, _) = await Browser.SignedInAsync(services);
        await browser.GetAsync("/settings/2fa");
        var app = await services.AppAsync();
        var token = await app.NewUserTokenAsync("v2");
        // Five digits: refused by the validator before any code is checked or counted.
        var (reason, html) = await BothAsync(app, "/api/2fa/enable", new { code = "12345" }, token,
            browser, "/settings/2fa/enable", new() { ["code"] = " 12345 " });
        Assert.Equal("Code must be 6 digits.", reason);
        Assert.StartsWith("<section id=\"two-factor\"", html.Trim());
    }

    [Fact]
    public async Task A_throttled_two_factor_form_post_says_when_to_retry_as_the_API_does()
    {
        var (browser, _) = await Browser.SignedInAsync(services);
        await browser.GetAsync("/settings/2fa");
        await browser.PostFormAsync("/settings/2fa/setup", new() { ["password"] = Api.Password }, 200, htmx: true);
        for (var i = 0; i < 5; i++)
            await browser.PostFormAsync("/settings/2fa/enable", new() { ["code"] = "000000" }, 401, htmx: true);
        var locked = await browser.PostFormAsync("/settings/2fa/enable", new() { ["code"] = "000000" }, 429, htmx: true);
        Assert.Contains("Too many wrong codes.", await locked.ReadAsTextAsync());
        AssertRetryAfter(locked, TimeSpan.FromMinutes(15));
    }

    [Fact]
    public async Task A_throttled_sign_in_form_post_says_when_to_retry_in_whole_seconds_of_at_least_one()
    {
        var app = await services.AppAsync();
        var name = Api.UniqueName("thr");
        await app.RegisterAsync(name);
        var browser = new Browser(app) { Address = "198.51.100.77" };
        await browser.GetAsync("/login");
        for (var i = 0; i < 5; i++)
            await browser.PostFormAsync("/login", new() { ["username"] = name, ["password"] = "wrong password!" }, 401, htmx: true);
        var locked = await browser.PostFormAsync("/login", new() { ["username"] = name, ["password"] = Api.Password }, 429, htmx: true);
        Assert.Contains("Too many failed sign-ins.", await locked.ReadAsTextAsync());
        AssertRetryAfter(locked, TimeSpan.FromMinutes(15));
    }

    [Fact]
    public async Task The_API_route_of_a_use_case_with_a_form_still_refuses_form_posts()
    {
        var app = await services.AppAsync();
        var browser = new Browser(app);
        await browser.GetAsync("/login");
        // A cross-site page can post a form to an anonymous API call without any token; it must not be read.
        await browser.PostFormAsync("/api/login", new() { ["username"] = "alice", ["password"] = Api.Password }, 415);
        await browser.PostFormAsync("/api/register", new() { ["username"] = Api.UniqueName(), ["password"] = Api.Password }, 415);
    }

    [Fact]
    public async Task The_second_step_form_without_its_challenge_cookie_asks_to_start_over()
    {
        var browser = new Browser(await services.AppAsync());
        await browser.GetAsync("/login/2fa");
        var html = await (await browser.PostFormAsync("/login/2fa", new() { ["code"] = "123456" }, 401, htmx: true)).ReadAsTextAsync();
        Assert.Contains("This sign-in has expired. Start over with your password.", html);
    }

    static void AssertRetryAfter(IScenarioResult result, TimeSpan window)
    {
        Assert.True(long.TryParse(result.Context.Response.Headers.RetryAfter.ToString(), out var seconds), "Retry-After is missing or not whole seconds");
        Assert.InRange(seconds, 1, (long)window.TotalSeconds);
    }
}
