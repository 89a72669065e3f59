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
        var sam = await driver.RegisterAsync("ts", "Sam");
        var sid = await driver.RegisterAsync("tt", "Sid");
        var samApi = await driver.ApiAsync(sam);
        var id = await ConversationAsync(samApi, [sid]);
        var samTab = await driver.SignedInAsync(sam);
        await samTab.GotoAsync($"/c/{id}");
        await Assertions.Expect(samTab.Locator("#messages")).ToBeVisibleAsync();

        var sidTab = await samTab.Context.NewPageAsync();
        await driver.SignInAsync(sidTab, sid);

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
        var sam = await driver.RegisterAsync("tw", "Sam");
        var sid = await driver.RegisterAsync("tx", "Sid");
        var samApi = await driver.ApiAsync(sam);
        var id = await ConversationAsync(samApi, [sid]);
        var samTab = await driver.SignedInAsync(sam);
        await samTab.GotoAsync($"/c/{id}");
        await Assertions.Expect(samTab.Locator("#messages")).ToBeVisibleAsync();
        var sidTab = await samTab.Context.NewPageAsync();
        await driver.SignInAsync(sidTab, sid);

        // Sam's browser session ends elsewhere: the stream closes and opens again with the cookie the browser holds, Sid's.
        Assert.Equal(System.Net.HttpStatusCode.NoContent, (await samApi.PostAsync("/api/sessions/revoke-others", null)).StatusCode);
        await samTab.WaitForURLAsync(url => new Uri(url).AbsolutePath == "/", new() { Timeout = 15_000 });
        await Assertions.Expect(samTab.Locator(".whoami")).ToContainTextAsync($"@{sid}");
    }

    [Fact]
    public async Task A_chat_tab_whose_session_was_replaced_by_the_same_user_sends_once_with_the_new_sessions_token()
    {
        var sam = await driver.RegisterAsync("tu", "Sam");
        var sid = await driver.RegisterAsync("tv", "Sid");
        var samApi = await driver.ApiAsync(sam);
        var id = await ConversationAsync(samApi, [sid]);
        var first = await driver.SignedInAsync(sam);
        await first.GotoAsync($"/c/{id}");
        await Assertions.Expect(first.Locator("#messages")).ToBeVisibleAsync();

        var second = await first.Context.NewPageAsync();
        await driver.SignInAsync(second, sam);

        await TypeAndSendAsync(first, "after signing in again");
        await Assertions.Expect(first.Locator("#composer [role=alert]")).ToHaveCountAsync(0);
        await Assertions.Expect(Messages(first)).ToHaveCountAsync(1);
        Assert.Equal(new Uri(first.Url).AbsolutePath, $"/c/{id}");
        var history = await samApi.GetFromJsonAsync<JsonObject>($"/api/conversations/{id}/messages");
        Assert.Equal(["after signing in again"], history!["messages"]!.AsArray().Select(m => m!["body"]!.GetValue<string>()));
    }
}
