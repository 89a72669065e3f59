using Ams.Testing;
using Microsoft.Playwright;
using static Ams.Browser.Driver;

namespace Ams.Browser;

/// <summary>A list longer than a page: the rest loads on demand, a live refresh keeps it, and the quick switcher finds all of it.</summary>
[Collection(BrowserCollection.Name)]
public sealed class ConversationListTests(AppProcess app, Chromium chromium)
{
    readonly Driver driver = new(app, chromium);

    [Fact]
    public async Task Older_conversations_load_on_demand_and_stay_through_a_live_refresh()
    {
        var me = await driver.RegisterAsync("lp");
        // Two creators, 26 groups each: one user may create 30 within the window.
        var creators = new[] { await driver.ApiAsync(await driver.RegisterAsync("lq")), await driver.ApiAsync(await driver.RegisterAsync("lr")) };
        var ids = new List<string>();
        for (var i = 0; i < 52; i++) ids.Add(await ConversationAsync(creators[i % 2], [me], $"Group {i:00}"));
        var page = await driver.SignedInAsync(me);
        var items = page.Locator("#conversations li[data-conversation]");
        var older = page.GetByRole(AriaRole.Button, new() { Name = "Older conversations" });
        await Assertions.Expect(items).ToHaveCountAsync(50);
        await Assertions.Expect(items.Last).ToContainTextAsync("Group 02");

        // The quick switcher finds one that is not shown yet, and opens it.
        await page.Keyboard.PressAsync("Control+k");
        var search = page.GetByRole(AriaRole.Combobox, new() { Name = "Jump to a conversation" });
        await search.FillAsync("group 01");
        await Assertions.Expect(page.Locator("#switcher-list li")).ToHaveTextAsync(["Group 01"]);
        await search.PressAsync("Enter");
        await page.WaitForURLAsync(url => new Uri(url).AbsolutePath == $"/c/{ids[1]}");
        await Assertions.Expect(page.Locator("#panel-title")).ToHaveTextAsync("Group 01");
        await Assertions.Expect(items).ToHaveCountAsync(50);

        await older.ClickAsync();
        await Assertions.Expect(items).ToHaveCountAsync(52);
        await Assertions.Expect(items.Last).ToContainTextAsync("Group 00");
        await Assertions.Expect(older).ToHaveCountAsync(0);

        // A message in the oldest moves it to the top; the list refreshes and keeps all 52.
        await SendAsync(creators[0], ids[0], "back from the archive");
        await Assertions.Expect(items.First).ToContainTextAsync("back from the archive");
        await Assertions.Expect(items).ToHaveCountAsync(52);
        await Assertions.Expect(older).ToHaveCountAsync(0);

        // It opens from the list like any other.
        await items.Last.GetByRole(AriaRole.Link).ClickAsync();
        await Assertions.Expect(page.Locator("#panel-title")).ToHaveTextAsync("Group 01");
    }
}
