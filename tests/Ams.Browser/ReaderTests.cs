using System.Net.Http.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Ams.Testing;
using Microsoft.Playwright;
using static Ams.Browser.Driver;

namespace Ams.Browser;

/// <summary>
/// Issue 14's reading side in the browser: the "New messages" marker, local times and days, group
/// members, username suggestions, the unread title and favicon, desktop notifications and motion.
/// </summary>
[Collection(BrowserCollection.Name)]
public sealed class ReaderTests(AppProcess app, Chromium chromium)
{
    readonly Driver driver = new(app, chromium);

    [Fact]
    public async Task A_reader_at_the_end_follows_new_messages_and_one_who_scrolled_up_gets_a_New_messages_marker()
    {
        var (bob, aliceApi, id) = await AliceAndBobAsync("n");
        for (var i = 0; i < 30; i++) await SendAsync(aliceApi, id, $"line {i}");
        var page = await driver.SignedInAsync(bob, height: 600);
        await page.GotoAsync($"/c/{id}");
        await Assertions.Expect(Messages(page)).ToHaveCountAsync(30);
        var list = page.Locator("#messages");
        var marker = page.GetByRole(AriaRole.Button, new() { Name = "New messages" });

        var seen = await SendAsync(aliceApi, id, "while Bob reads at the end");
        await Assertions.Expect(Messages(page)).ToHaveCountAsync(31);
        await Assertions.Expect(Messages(page).Last).ToBeInViewportAsync();
        await Assertions.Expect(marker).ToBeHiddenAsync();
        await ReadUpToAsync(aliceApi, id, bob, seen);

        await list.EvaluateAsync("l => { l.scrollTop = 200; }");
        var unseen = await SendAsync(aliceApi, id, "while Bob reads further up");
        await Assertions.Expect(Messages(page)).ToHaveCountAsync(32);
        await Assertions.Expect(marker).ToBeVisibleAsync();
        Assert.Equal(200, await list.EvaluateAsync<double>("l => l.scrollTop"), 1.0);
        await Assertions.Expect(Messages(page).Last).Not.ToBeInViewportAsync();
        // Not read while it is out of sight: Alice gets no "Seen by Bob" for it.
        await page.WaitForTimeoutAsync(1500);
        await ReadUpToAsync(aliceApi, id, bob, seen);

        await marker.ClickAsync();
        await Assertions.Expect(Messages(page).Last).ToBeInViewportAsync();
        await Assertions.Expect(marker).ToBeHiddenAsync();
        await Assertions.Expect(Composer(page)).ToBeFocusedAsync();
        await ReadUpToAsync(aliceApi, id, bob, unseen);
    }

    /// <summary>Waits (up to 10 s) until the member's read mark is <paramref name="expected"/>, as the API shows it to another member.</summary>
    static async Task ReadUpToAsync(HttpClient api, string conversationId, string username, string expected)
    {
        string? readUpTo = null;
        for (var tries = 0; tries < 100; tries++)
        {
            var conversation = await api.GetFromJsonAsync<JsonObject>($"/api/conversations/{conversationId}");
            readUpTo = conversation!["members"]!.AsArray().Single(m => m!["username"]!.GetValue<string>() == username)!["readUpTo"]?.GetValue<string>();
            if (readUpTo == expected) return;
            await Task.Delay(100);
        }
        Assert.Equal(expected, readUpTo);
    }

    [Fact]
    public async Task Times_are_in_the_readers_zone_and_locale_and_each_local_day_starts_with_a_separator()
    {
        var (bob, aliceApi, id) = await AliceAndBobAsync("d");
        var evening = await SendAsync(aliceApi, id, "late in Kathmandu");
        var night = await SendAsync(aliceApi, id, "after midnight in Kathmandu");
        await SendAsync(aliceApi, id, "today");
        // 18:00 and 18:30 UTC are one day in UTC but two in Kathmandu (UTC+5:45): 23:45 and 00:15.
        await app.SqlAsync($"UPDATE messages SET sent_at = '2026-11-20 18:00:00' WHERE id = {evening}; " +
                           $"UPDATE messages SET sent_at = '2026-11-20 18:30:00' WHERE id = {night};");

        var page = await driver.SignedInAsync(bob, timeZone: "Asia/Kathmandu");
        await page.GotoAsync($"/c/{id}");
        await Assertions.Expect(Messages(page)).ToHaveCountAsync(3);
        await Assertions.Expect(page.Locator("#messages li.day")).ToHaveTextAsync(["Friday, November 20, 2026", "Saturday, November 21, 2026", "Today"]);
        var times = Messages(page).Locator(":scope > time");
        Assert.StartsWith("2026-11-20T18:00:00", await times.Nth(0).GetAttributeAsync("datetime"));
        Assert.Equal("11:45 PM", Spaces(await times.Nth(0).TextContentAsync()));
        Assert.Equal("12:15 AM", Spaces(await times.Nth(1).TextContentAsync()));
        Assert.Equal("Friday, November 20, 2026 at 11:45 PM", Spaces(await times.Nth(0).GetAttributeAsync("title")));
        // The separators are items of the list, in order: day, message, day, message, day, message.
        Assert.Equal(["day", "message", "day", "message", "day", "message"],
            await page.Locator("#messages > li:not(#older)").EvaluateAllAsync<string[]>("items => items.map(li => li.classList.contains('day') ? 'day' : 'message')"));
    }

    [Fact]
    public async Task The_owner_adds_a_member_found_by_autocomplete_and_removes_one_who_then_loses_the_chat()
    {
        var alice = await driver.RegisterAsync("ga", "Alice");
        var bob = await driver.RegisterAsync("gb", "Bob");
        var carol = await driver.RegisterAsync("gc", "Carol Quinn");
        var id = await ConversationAsync(await driver.ApiAsync(alice), [bob], "Crew");
        var bobPage = await driver.SignedInAsync(bob);
        await bobPage.GotoAsync($"/c/{id}");
        var alicePage = await driver.SignedInAsync(alice);
        await alicePage.GotoAsync($"/c/{id}");

        await alicePage.GetByText("Group settings").ClickAsync();
        await alicePage.GetByLabel("Add member").PressSequentiallyAsync(carol[..10]);
        var suggestion = alicePage.Locator($"#user-suggestions option[value='{carol}']");
        await Assertions.Expect(suggestion).ToHaveAttributeAsync("label", "Carol Quinn");
        await alicePage.GetByLabel("Add member").FillAsync(carol);
        await alicePage.GetByRole(AriaRole.Button, new() { Name = "Add", Exact = true }).ClickAsync();
        await Assertions.Expect(alicePage.Locator($"#members li[data-username='{carol}']")).ToHaveCountAsync(1);
        var carolPage = await driver.SignedInAsync(carol);
        await Assertions.Expect(carolPage.Locator("#conversations li")).ToContainTextAsync(["Crew"]);

        alicePage.Dialog += async (_, dialog) => await dialog.AcceptAsync();
        await alicePage.GetByText("Group settings").ClickAsync();
        await alicePage.GetByRole(AriaRole.Button, new() { Name = "Remove Bob" }).ClickAsync();
        await Assertions.Expect(alicePage.Locator($"#members li[data-username='{bob}']")).ToHaveCountAsync(0);
        await Assertions.Expect(alicePage.Locator($"#members li[data-username='{carol}']")).ToHaveCountAsync(1);
        // Bob had the chat open: it closes, and it is gone from his list.
        await bobPage.WaitForURLAsync(url => new Uri(url).AbsolutePath == "/");
        await Assertions.Expect(bobPage.Locator("#conversations li")).ToHaveCountAsync(0);
    }

    [Fact]
    public async Task New_chat_suggests_other_users_by_prefix_after_the_names_already_typed_and_never_yourself()
    {
        // Two accounts that share their first seven characters.
        var shared = "s" + Guid.NewGuid().ToString("N")[..6];
        var alice = await driver.RegisterAsync(shared, "Alice");
        var dave = await driver.RegisterAsync(shared, "Dave");
        var bob = await driver.RegisterAsync("ub", "Bob");
        var page = await driver.SignedInAsync(alice);
        var with = page.GetByLabel("With (usernames, comma-separated)");
        await with.PressSequentiallyAsync($"{bob}, {shared}");
        await Assertions.Expect(page.Locator("#user-suggestions option")).ToHaveCountAsync(1);
        await Assertions.Expect(page.Locator("#user-suggestions option")).ToHaveAttributeAsync("value", $"{bob}, {dave}");
        await Assertions.Expect(page.Locator("#user-suggestions option")).ToHaveAttributeAsync("label", "Dave");
        Assert.Equal("user-suggestions", await with.GetAttributeAsync("list"));
    }

    [Fact]
    public async Task Unread_messages_show_in_the_tab_title_and_as_a_favicon_badge_until_read()
    {
        var (bob, aliceApi, id) = await AliceAndBobAsync("u");
        var page = await driver.SignedInAsync(bob);
        await Assertions.Expect(page).ToHaveTitleAsync("Chats · AMS");
        Assert.DoesNotContain("circle", await FaviconAsync(page));

        await SendAsync(aliceApi, id, "one");
        await SendAsync(aliceApi, id, "two");
        await Assertions.Expect(page).ToHaveTitleAsync("(2) Chats · AMS");
        var badge = await FaviconAsync(page);
        Assert.Contains("<circle", badge);
        Assert.Contains(">2</text>", badge);

        await page.GotoAsync($"/c/{id}");
        await Assertions.Expect(Messages(page)).ToHaveCountAsync(2);
        await Assertions.Expect(page).ToHaveTitleAsync(new Regex("^[^(].* · AMS$"));
        await Assertions.Expect(page.Locator("link[rel=icon]")).Not.ToHaveAttributeAsync("href", new Regex("circle"));
    }

    [Fact]
    public async Task Desktop_notifications_are_asked_for_on_a_click_and_shown_only_while_the_tab_is_hidden()
    {
        var (bob, aliceApi, id) = await AliceAndBobAsync("o");
        // A stand-in Notification API and a switch for the page's visibility, installed before app.js runs.
        var page = await driver.SignedInAsync(bob, initScript: """
            (() => {
              window.__shown = []; window.__asked = 0; window.__hidden = false;
              class StandIn {
                static permission = "default";
                static async requestPermission() { window.__asked++; StandIn.permission = "granted"; return "granted"; }
                constructor(title, options) { window.__shown.push({ title, body: options?.body ?? "" }); }
                addEventListener() {}
              }
              window.Notification = StandIn;
              Object.defineProperty(Document.prototype, "hidden", { get: () => window.__hidden, configurable: true });
              Object.defineProperty(Document.prototype, "visibilityState", { get: () => (window.__hidden ? "hidden" : "visible"), configurable: true });
            })();
            """);
        var enable = page.GetByRole(AriaRole.Button, new() { Name = "Turn on desktop notifications" });
        await Assertions.Expect(enable).ToBeVisibleAsync();
        Assert.Equal(0, await page.EvaluateAsync<int>("() => window.__asked"));
        await enable.ClickAsync();
        await Assertions.Expect(enable).ToBeHiddenAsync();
        Assert.Equal(1, await page.EvaluateAsync<int>("() => window.__asked"));

        await SendAsync(aliceApi, id, "seen in the open tab");
        await Assertions.Expect(page).ToHaveTitleAsync("(1) Chats · AMS");
        Assert.Equal(0, await page.EvaluateAsync<int>("() => window.__shown.length"));

        await page.EvaluateAsync("() => { window.__hidden = true; }");
        await SendAsync(aliceApi, id, "while Bob is away");
        await Assertions.Expect(page).ToHaveTitleAsync("(2) Chats · AMS");
        var shown = JsonNode.Parse(await page.EvaluateAsync<string>("() => JSON.stringify(window.__shown)"))!.AsArray();
        var note = Assert.Single(shown)!;
        Assert.Matches(@"^Alice \(@oa[0-9a-z]+\)$", note["title"]!.GetValue<string>());   // a display name is anyone's: the username beside it
        Assert.Equal("while Bob is away", note["body"]!.GetValue<string>());
    }

    [Fact]
    public async Task A_live_message_eases_in_unless_the_reader_asks_for_reduced_motion()
    {
        var (bob, aliceApi, id) = await AliceAndBobAsync("m");
        await SendAsync(aliceApi, id, "history");
        var moving = await driver.SignedInAsync(bob, reducedMotion: false);
        var still = await driver.SignedInAsync(bob, reducedMotion: true);
        foreach (var page in new[] { moving, still })
        {
            await page.GotoAsync($"/c/{id}");
            await Assertions.Expect(Messages(page)).ToHaveCountAsync(1);
        }
        await SendAsync(aliceApi, id, "live");
        const string Animation = "li => getComputedStyle(li).animationName";
        foreach (var page in new[] { moving, still }) await Assertions.Expect(Messages(page)).ToHaveCountAsync(2);
        Assert.Equal("none", await Messages(moving).First.EvaluateAsync<string>(Animation));
        Assert.Equal("arrive", await Messages(moving).Last.EvaluateAsync<string>(Animation));
        Assert.Equal("none", await Messages(still).Last.EvaluateAsync<string>(Animation));
    }

    /// <summary>Alice (an API client) and Bob (a username) in a direct conversation.</summary>
    async Task<(string Bob, HttpClient AliceApi, string Id)> AliceAndBobAsync(string prefix)
    {
        var alice = await driver.RegisterAsync(prefix + "a", "Alice");
        var bob = await driver.RegisterAsync(prefix + "b", "Bob");
        var aliceApi = await driver.ApiAsync(alice);
        return (bob, aliceApi, await ConversationAsync(aliceApi, [bob]));
    }

    static async Task<string> FaviconAsync(IPage page) =>
        Uri.UnescapeDataString(await page.Locator("link[rel=icon]").GetAttributeAsync("href") ?? "");

    /// <summary>ICU puts narrow and no-break spaces into times ("11:45 PM").</summary>
    static string Spaces(string? text) => (text ?? "").Replace('\u202f', ' ').Replace('\u00a0', ' ').Trim();
}
