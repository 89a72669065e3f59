using System.Net.Http.Json;
using System.Text;
using Ams.Testing;
using Microsoft.Playwright;

namespace Ams.Browser;

/// <summary>File sharing in Chromium: picking and dropping files, the progress list, previews, cards and downloads.</summary>
[Collection(BrowserCollection.Name)]
public sealed class AttachmentTests(AppProcess app, Chromium chromium)
{
    readonly Driver driver = new(app, chromium);
    // A 1×1 PNG, so the preview really renders.
    static readonly byte[] Png = Convert.FromBase64String("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==");

    [Fact]
    public async Task Alice_attaches_a_file_and_an_image_and_Bob_previews_and_downloads_them()
    {
        var alice = await driver.RegisterAsync("fa");
        var bob = await driver.RegisterAsync("fb");
        var alicePage = await driver.SignedInAsync(alice);
        var errors = new List<string>();
        alicePage.Console += (_, m) => { if (m.Type == "error") errors.Add(m.Text); };

        await alicePage.GetByLabel("With (usernames, comma-separated)").FillAsync(bob);
        await alicePage.GetByRole(AriaRole.Button, new() { Name = "Start" }).ClickAsync();
        await alicePage.WaitForURLAsync(url => new Uri(url).AbsolutePath.StartsWith("/c/"));
        var path = new Uri(alicePage.Url).AbsolutePath;

        var notes = Encoding.UTF8.GetBytes("meeting notes: " + new string('x', 300_000));   // two chunks
        await alicePage.Locator("#attach-input").SetInputFilesAsync(new[]
        {
            new FilePayload { Name = "Notes – März.txt", MimeType = "text/plain", Buffer = notes },
            new FilePayload { Name = "pixel.png", MimeType = "image/png", Buffer = Png },
        });
        // And one dropped onto the composer.
        var dropped = await alicePage.EvaluateHandleAsync("""
            () => { const dt = new DataTransfer(); dt.items.add(new File(["dropped bytes"], "dropped.bin")); return dt; }
            """);
        await alicePage.Locator("#composer").DispatchEventAsync("drop", new Dictionary<string, object> { ["dataTransfer"] = dropped });
        await Assertions.Expect(alicePage.Locator("#pending li.done")).ToHaveCountAsync(3);
        await alicePage.GetByRole(AriaRole.Textbox, new() { Name = "Message" }).FillAsync("files for you");
        await alicePage.GetByRole(AriaRole.Button, new() { Name = "Send" }).ClickAsync();
        await Assertions.Expect(alicePage.Locator("#pending li")).ToHaveCountAsync(0);
        await Assertions.Expect(alicePage.Locator("#messages li.message ul.attachments li")).ToHaveCountAsync(3);

        var bobPage = await driver.SignedInAsync(bob, width: 375);
        await bobPage.GotoAsync(path);
        var message = bobPage.Locator("#messages li.message").Last;
        await Assertions.Expect(message.Locator("p")).ToHaveTextAsync("files for you");
        var preview = message.Locator("ul.attachments img");
        await Assertions.Expect(preview).ToHaveCountAsync(1);
        await Assertions.Expect(preview).ToHaveAttributeAsync("alt", "pixel.png");
        await bobPage.WaitForFunctionAsync("() => document.querySelector('#messages ul.attachments img')?.naturalWidth === 1");
        var card = message.Locator("a.file-card").Filter(new() { HasText = "Notes – März.txt" });
        await Assertions.Expect(card.Locator(".file-meta")).ToContainTextAsync("KiB · application/octet-stream");

        // The download keeps the original name and bytes.
        var download = await bobPage.RunAndWaitForDownloadAsync(() => card.ClickAsync());
        Assert.Equal("Notes – März.txt", download.SuggestedFilename);
        Assert.Equal(notes, await File.ReadAllBytesAsync((await download.PathAsync())!));
        var image = await bobPage.RunAndWaitForDownloadAsync(() => preview.ClickAsync());
        Assert.Equal("pixel.png", image.SuggestedFilename);

        // Opened in a tab of its own ("Open image in new tab"), the image shows, sandboxed. (The
        // console has Chromium's viewer styles and favicon refused by the sandbox's policy: not the image.)
        var alone = await bobPage.Context.NewPageAsync();
        await alone.GotoAsync(new Uri(new Uri(bobPage.Url), await preview.GetAttributeAsync("src")).ToString());
        await alone.WaitForFunctionAsync("() => document.images.length === 1 && document.images[0].complete && document.images[0].naturalWidth === 1");
        await alone.CloseAsync();

        // Fits a 375 px phone: nothing wider than the viewport.
        var overflow = await bobPage.EvaluateAsync<bool>("() => document.documentElement.scrollWidth > window.innerWidth");
        Assert.False(overflow);
        Directory.CreateDirectory(Path.Combine(AppProcess.RepositoryRoot(), "artifacts", "screenshots"));
        await bobPage.ScreenshotAsync(new() { Path = Path.Combine(AppProcess.RepositoryRoot(), "artifacts", "screenshots", "attachments-375.png") });
        Assert.Empty(errors);
    }
}
