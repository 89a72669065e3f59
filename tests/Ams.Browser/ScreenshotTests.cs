using Ams.Testing;
using Microsoft.Playwright;
using static Ams.Browser.Driver;

namespace Ams.Browser;

/// <summary>
/// The README's screenshots: a conversation and the list at 375 px, the chat at 1280 px, light and
/// dark, into artifacts/screenshots/ (`just screenshots` copies them to docs/screenshots/).
/// </summary>
[Collection(BrowserCollection.Name)]
public sealed class ScreenshotTests(AppProcess app, Chromium chromium)
{
    readonly Driver driver = new(app, chromium);
    static readonly string Folder = Path.Combine(RepositoryRoot(), "artifacts", "screenshots");

    [Fact]
    public async Task The_chat_at_375_and_1280_px_in_light_and_dark()
    {
        var alice = await driver.RegisterAsync("sa", "Alice Martin");
        var bob = await driver.RegisterAsync("sb", "Bob Chen");
        var carol = await driver.RegisterAsync("sc", "Carol Diaz");
        var aliceApi = await driver.ApiAsync(alice);
        var bobApi = await driver.ApiAsync(bob);
        var carolApi = await driver.ApiAsync(carol);
        var group = await ConversationAsync(aliceApi, [bob, carol], "Release 1.4");
        await SendAsync(carolApi, await ConversationAsync(carolApi, [alice]), "Lunch on Friday?");
        await SendAsync(aliceApi, group, "Morning! The release notes draft is at https://example.com/notes");
        await SendAsync(aliceApi, group, "Please read the migration part.");
        await SendAsync(bobApi, group, "Reading now.");
        await SendAsync(bobApi, group, "The second step needs the new config key, I'll add it.");
        await SendAsync(carolApi, group, "Tests are green on my side.");
        await SendAsync(aliceApi, group, "Great, shipping after lunch.");

        Directory.CreateDirectory(Folder);
        var written = new List<string>();
        foreach (var dark in new[] { false, true })
        {
            var scheme = dark ? "dark" : "light";
            var desktop = await driver.SignedInAsync(alice, 1280, dark: dark);
            await desktop.GotoAsync($"/c/{group}");
            await Assertions.Expect(Messages(desktop)).ToHaveCountAsync(6);
            await Assertions.Expect(desktop.Locator(".entropy")).ToBeVisibleAsync();
            written.Add(await ShotAsync(desktop, $"chat-1280-{scheme}.png"));

            var phone = await driver.SignedInAsync(alice, 375, 667, touch: true, dark: dark);
            await Assertions.Expect(phone.Locator("#conversations li")).ToHaveCountAsync(2);
            written.Add(await ShotAsync(phone, $"list-375-{scheme}.png"));
            await phone.GotoAsync($"/c/{group}");
            await Assertions.Expect(Messages(phone)).ToHaveCountAsync(6);
            written.Add(await ShotAsync(phone, $"chat-375-{scheme}.png"));
        }
        Assert.All(written, path => Assert.True(new FileInfo(path).Length > 10_000, $"{path} is nearly empty"));
    }

    static async Task<string> ShotAsync(IPage page, string name)
    {
        var path = Path.Combine(Folder, name);
        await page.ScreenshotAsync(new() { Path = path });
        return path;
    }
}
