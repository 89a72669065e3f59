using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Ams.Testing;
using Microsoft.Playwright;
using static Ams.Browser.Driver;

namespace Ams.Browser;

/// <summary>
/// Two tabs of one browser share its cookies: a sign-in in one replaces the session the other's
/// page was rendered for (and its anti-forgery token, which is bound to the session).
/// </summary>
[Collection(BrowserCollection.Name)]
public sealed class TabTests(AppProcess app, Chromium chromium)
{
    readonly Driver driver = new(app, chromium);

    [Fact]
    public async Task A_chat_tab_whose_browser_signed_in_as_someone_else_leaves_instead_of_acting_as_them()
    {
        var (samTab, samApi, sid, id) = await SamsChatThenASignInAsync("ts", asSid: true);

        // Sam's tab, still showing Sam, sends: the browser is Sid's now, so it leaves for Sid's start
        // page and stores nothing. (Its own next write, a presence beat say, may have sent it there first.)
        try
        {
            await samTab.EvaluateAsync("""
                () => { const body = document.getElementById("body"); if (body) { body.value = "typed by Sam"; body.form.requestSubmit(); } }
                """);
        }
        catch (PlaywrightException) when (new Uri(samTab.Url).AbsolutePath != $"/c/{id}")
        {
            // Left while the script ran.
        }
        await samTab.WaitForURLAsync(url => new Uri(url).AbsolutePath == "/", new() { Timeout = 15_000 });
        await Assertions.Expect(samTab.Locator(".whoami")).ToContainTextAsync($"@{sid}");
        var history = await samApi.GetFromJsonAsync<JsonObject>($"/api/conversations/{id}/messages");
        Assert.Empty(history!["messages"]!.AsArray());
    }

    [Fact]
    public async Task A_chat_tab_whose_live_stream_comes_back_as_someone_else_leaves_without_being_touched()
    {
        var (samTab, samApi, sid, _) = await SamsChatThenASignInAsync("tw", asSid: true);

        // Sam's browser session ends elsewhere: the stream closes and opens again with the cookie the browser holds, Sid's.
        Assert.Equal(System.Net.HttpStatusCode.NoContent, (await samApi.PostAsync("/api/sessions/revoke-others", null)).StatusCode);
        await samTab.WaitForURLAsync(url => new Uri(url).AbsolutePath == "/", new() { Timeout = 15_000 });
        await Assertions.Expect(samTab.Locator(".whoami")).ToContainTextAsync($"@{sid}");
    }

    [Fact]
    public async Task A_chat_tab_whose_session_was_replaced_by_the_same_user_sends_once_with_the_new_sessions_token()
    {
        var (samTab, samApi, _, id) = await SamsChatThenASignInAsync("tu", asSid: false);

        await TypeAndSendAsync(samTab, "after signing in again");
        await Assertions.Expect(samTab.Locator("#composer [role=alert]")).ToHaveCountAsync(0);
        await Assertions.Expect(Messages(samTab)).ToHaveCountAsync(1);
        Assert.Equal(new Uri(samTab.Url).AbsolutePath, $"/c/{id}");
        var history = await samApi.GetFromJsonAsync<JsonObject>($"/api/conversations/{id}/messages");
        Assert.Equal(["after signing in again"], history!["messages"]!.AsArray().Select(m => m!["body"]!.GetValue<string>()));
    }

    /// <summary>Sam's tab on his chat with Sid; then another tab of the same browser signs in, as Sid or as Sam again.</summary>
    async Task<(IPage SamTab, HttpClient SamApi, string Sid, string ConversationId)> SamsChatThenASignInAsync(string prefix, bool asSid)
    {
        var sam = await driver.RegisterAsync(prefix + "s", "Sam");
        var sid = await driver.RegisterAsync(prefix + "d", "Sid");
        var samApi = await driver.ApiAsync(sam);
        var id = await ConversationAsync(samApi, [sid]);
        var samTab = await driver.SignedInAsync(sam);
        await samTab.GotoAsync($"/c/{id}");
        await Assertions.Expect(samTab.Locator("#messages")).ToBeVisibleAsync();
        await driver.SignInAsync(await samTab.Context.NewPageAsync(), asSid ? sid : sam);
        return (samTab, samApi, sid, id);
    }
}
