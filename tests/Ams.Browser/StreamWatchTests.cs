using Ams.Testing;
using Microsoft.Playwright;

namespace Ams.Browser;

/// <summary>
/// A stream that goes silent without closing (its node hangs, or a network dropped the connection
/// without a word): only the page can tell, by the keep-alive events it stops hearing.
/// </summary>
[Collection(BrowserCollection.Name)]
public sealed class StreamWatchTests(AppProcess app, Chromium chromium)
{
    [Fact]
    public async Task A_page_whose_stream_falls_silent_says_it_is_reconnecting_and_opens_it_again_resuming_after_its_last_event()
    {
        // A node of its own on the same MariaDB and Redis, with a keep-alive every second: the page
        // gives up on a stream after 2.5 s of silence (a minute would be 37.5 s at the default 15 s).
        var node = await AppProcess.LaunchAsync(app.BinaryPath, [], app.MariaDbConnection, app.RedisConnection, app.MasterKeys,
            new Dictionary<string, string> { ["Events__KeepAlive"] = "00:00:01" });
        try
        {
            var driver = new Driver(node, chromium);
            var (alice, bob) = (await driver.RegisterAsync("swa"), await driver.RegisterAsync("swb"));
            using var aliceApi = await driver.ApiAsync(alice);
            var conversation = await Driver.ConversationAsync(aliceApi, [bob]);
            var page = await driver.SignedInAsync(bob);
            await page.GotoAsync($"/c/{conversation}");
            await Driver.SendAsync(aliceApi, conversation, "before the hang");
            await Assertions.Expect(Driver.Messages(page)).ToHaveCountAsync(1);
            var connection = page.Locator("#connection");
            await Assertions.Expect(connection).ToHaveTextAsync("");

            await node.PauseAsync();
            try
            {
                // The stream stays open and says nothing: the page's watch notices.
                await Assertions.Expect(connection).ToHaveTextAsync("Reconnecting…", new() { Timeout = 8000 });
            }
            finally
            {
                await node.ResumeAsync();
            }
            await Assertions.Expect(connection).ToHaveTextAsync("", new() { Timeout = 10000 });
            await Driver.SendAsync(aliceApi, conversation, "after the hang");
            await Assertions.Expect(Driver.Messages(page)).ToHaveCountAsync(2);
            await Assertions.Expect(Driver.Messages(page).Last).ToContainTextAsync("after the hang");
        }
        finally
        {
            await node.DisposeAsync();
        }
    }
}
