using Microsoft.Playwright;

namespace Ams.Browser;

/// <summary>Debian's Chromium, headless, driven by Playwright; no browser download.</summary>
public sealed class Chromium : IAsyncLifetime
{
    IPlaywright playwright = null!;
    public IBrowser Browser { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        // Playwright's 5 s for an expectation is short for a machine's first Chromium start (fonts,
        // caches) on a fresh CI machine; an expectation that never holds still fails, only later.
        Assertions.SetDefaultExpectTimeout(15_000);
        playwright = await Playwright.CreateAsync();
        Browser = await playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = Environment.GetEnvironmentVariable("CHROMIUM") ?? "/usr/bin/chromium",
            Headless = true,
            Args = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync"],
        });
    }

    public async Task DisposeAsync()
    {
        await Browser.DisposeAsync();
        playwright.Dispose();
    }
}
