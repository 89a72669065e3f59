using System.Text.RegularExpressions;
using Ams.Testing;
using Microsoft.Playwright;
using static Ams.Browser.Driver;

namespace Ams.Browser;

/// <summary>Issue 14 in the browser, two users at once: links, edit, delete, react, typing, presence, rename and leave.</summary>
[Collection(BrowserCollection.Name)]
public sealed class ConversationTests(AppProcess app, Chromium chromium)
{
    readonly Driver driver = new(app, chromium);

    [Fact]
    public async Task Http_links_are_clickable_and_a_javascript_link_stays_text()
    {
        var alice = await driver.RegisterAsync("la");
        var bob = await driver.RegisterAsync("lb");
        var id = await ConversationAsync(await driver.ApiAsync(alice), [bob]);
        var page = await driver.SignedInAsync(alice);
        await page.GotoAsync($"/c/{id}");
        await TypeAndSendAsync(page, "docs: https://example.com/a?b=1&c=<x>. and javascript:alert(document.cookie) and <a href=\"javascript:alert(1)\">x</a>");
        var bobPage = await driver.SignedInAsync(bob);
        await bobPage.GotoAsync($"/c/{id}");
        var body = Messages(bobPage).First.Locator("p.body");
        await Assertions.Expect(body).ToContainTextAsync("javascript:alert(document.cookie)");
        var link = body.Locator("a");
        await Assertions.Expect(link).ToHaveCountAsync(1);
        await Assertions.Expect(link).ToHaveAttributeAsync("href", "https://example.com/a?b=1&c=");
        await Assertions.Expect(link).ToHaveAttributeAsync("rel", "noopener noreferrer");
        Assert.Equal(0, await bobPage.Locator("#messages a[href^='javascript']").CountAsync());
    }

    [Fact]
    public async Task Edit_with_the_Up_arrow_delete_with_confirmation_and_react_reach_the_other_user_live()
    {
        var alice = await driver.RegisterAsync("ea", "Alice");
        var bob = await driver.RegisterAsync("eb", "Bob");
        var id = await ConversationAsync(await driver.ApiAsync(alice), [bob]);
        var alicePage = await driver.SignedInAsync(alice);
        var bobPage = await driver.SignedInAsync(bob);
        await alicePage.GotoAsync($"/c/{id}");
        await bobPage.GotoAsync($"/c/{id}");
        await TypeAndSendAsync(alicePage, "frist");
        await TypeAndSendAsync(alicePage, "to be taken back");
        await Assertions.Expect(Messages(bobPage)).ToHaveCountAsync(2);

        // ↑ on the empty composer edits the last message; the first is edited through its button.
        await Composer(alicePage).PressAsync("ArrowUp");
        var editor = alicePage.GetByRole(AriaRole.Textbox, new() { Name = "Edit message" });
        await Assertions.Expect(editor).ToBeFocusedAsync();
        await Assertions.Expect(editor).ToHaveValueAsync("to be taken back");
        await editor.PressAsync("Escape");
        await Messages(alicePage).First.HoverAsync();
        await Messages(alicePage).First.GetByRole(AriaRole.Button, new() { Name = "Edit" }).ClickAsync();
        await editor.FillAsync("first");
        await editor.PressAsync("Enter");
        await Assertions.Expect(Messages(bobPage).First.Locator("p.body")).ToHaveTextAsync("first");
        await Assertions.Expect(Messages(bobPage).First.Locator(".edited")).ToBeVisibleAsync();

        // Delete asks first; cancelling keeps it.
        var answers = new Queue<bool>([false, true]);
        alicePage.Dialog += async (_, dialog) => { if (answers.Dequeue()) await dialog.AcceptAsync(); else await dialog.DismissAsync(); };
        await Messages(alicePage).Last.HoverAsync();
        await Messages(alicePage).Last.GetByRole(AriaRole.Button, new() { Name = "Delete" }).ClickAsync();
        await alicePage.WaitForTimeoutAsync(500);
        await Assertions.Expect(Messages(bobPage).Last.Locator("p.body")).ToHaveTextAsync("to be taken back");
        await Messages(alicePage).Last.GetByRole(AriaRole.Button, new() { Name = "Delete" }).ClickAsync();
        await Assertions.Expect(Messages(bobPage).Last).ToContainTextAsync("Message deleted");
        await Assertions.Expect(Messages(bobPage).Last).Not.ToContainTextAsync("to be taken back");

        // Bob reacts; Alice sees the count, and Bob's second click takes it back.
        await Messages(bobPage).First.HoverAsync();
        await Messages(bobPage).First.GetByRole(AriaRole.Button, new() { Name = "React to Alice's message" }).ClickAsync();
        await bobPage.GetByRole(AriaRole.Button, new() { Name = "React with 🎉" }).ClickAsync();
        var reaction = Messages(alicePage).First.Locator("li.reaction[data-emoji='🎉'] .count");
        await Assertions.Expect(reaction).ToHaveTextAsync("1");
        await Assertions.Expect(Messages(bobPage).First.Locator("li.reaction.mine")).ToHaveCountAsync(1);
        await Messages(bobPage).First.Locator("li.reaction button").ClickAsync();
        await Assertions.Expect(reaction).ToHaveCountAsync(0);

        // The page shows the count the event carries, not its own count moved by one: here a
        // reaction Alice's page never heard of (a 🎉 stored behind its back) is counted too.
        await app.SqlAsync($"INSERT INTO reactions (message_id, emoji, user_id, created_at) SELECT MIN(m.id), CONVERT(UNHEX('F09F8E89') USING utf8mb4), u.id, NOW(3) " +
                           $"FROM messages m JOIN users u ON u.username = '{alice}' WHERE m.conversation_id = {id} GROUP BY u.id");
        await Messages(bobPage).First.HoverAsync();
        await Messages(bobPage).First.GetByRole(AriaRole.Button, new() { Name = "React to Alice's message" }).ClickAsync();
        await bobPage.GetByRole(AriaRole.Button, new() { Name = "React with 🎉" }).ClickAsync();
        await Assertions.Expect(reaction).ToHaveTextAsync("2");
    }

    [Fact]
    public async Task Typing_presence_receipts_rename_and_leave_in_a_group()
    {
        var alice = await driver.RegisterAsync("ta", "Alice");
        var bob = await driver.RegisterAsync("tb", "Bob");
        var carol = await driver.RegisterAsync("tc", "Carol");
        var id = await ConversationAsync(await driver.ApiAsync(alice), [bob, carol], "Planning");
        var bobPage = await driver.SignedInAsync(bob);
        await bobPage.GotoAsync($"/c/{id}");
        var alicePage = await driver.SignedInAsync(alice);
        await alicePage.GotoAsync($"/c/{id}");

        // Bob has a live stream open: online. Carol has none.
        await Assertions.Expect(alicePage.Locator($"#members li[data-username='{bob}']")).ToHaveClassAsync(new Regex("\\bonline\\b"));
        await Assertions.Expect(alicePage.Locator($"#members li[data-username='{carol}']")).ToHaveClassAsync(new Regex("\\boffline\\b"));

        await Composer(bobPage).PressSequentiallyAsync("hmm");
        await Assertions.Expect(alicePage.Locator("#typing")).ToHaveTextAsync($"Bob (@{bob}) is typing…");
        await TypeAndSendAsync(alicePage, "Agenda?");
        await Assertions.Expect(alicePage.Locator("#receipt")).ToHaveTextAsync($"Seen by Bob (@{bob})");

        // The owner renames; Bob's header follows live. Then Bob leaves.
        await alicePage.GetByText("Group settings").ClickAsync();
        await alicePage.GetByLabel("Group name").FillAsync("Planning 2027");
        await alicePage.GetByRole(AriaRole.Button, new() { Name = "Rename" }).ClickAsync();
        await Assertions.Expect(bobPage.Locator("#panel-title")).ToHaveTextAsync("Planning 2027");
        await Assertions.Expect(bobPage).ToHaveTitleAsync(new Regex("Planning 2027 · AMS$"));   // the tab's too
        bobPage.Dialog += async (_, dialog) => await dialog.AcceptAsync();
        await bobPage.GetByText("Group settings").ClickAsync();
        await bobPage.GetByRole(AriaRole.Button, new() { Name = "Leave group" }).ClickAsync();
        await bobPage.WaitForURLAsync(url => new Uri(url).AbsolutePath == "/");
        await Assertions.Expect(bobPage.Locator("#conversations li")).ToHaveCountAsync(0);
        await Assertions.Expect(alicePage.Locator($"#members li[data-username='{bob}']")).ToHaveCountAsync(0, new() { Timeout = 10_000 });
    }
}
