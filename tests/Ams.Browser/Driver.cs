using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Ams.Testing;
using Microsoft.Playwright;

namespace Ams.Browser;

/// <summary>What the browser tests do again and again: accounts, API clients, signed-in pages.</summary>
public sealed class Driver(AppProcess app, Chromium chromium)
{
    public const string Password = "correct horse battery staple";

    public async Task<string> RegisterAsync(string prefix, string? displayName = null)
    {
        var name = $"{prefix}{Guid.NewGuid():N}"[..16];
        using var client = app.Client();
        var response = await client.PostAsJsonAsync("/api/register", new { username = name, password = Password, displayName });
        Assert.True(response.IsSuccessStatusCode, await response.Content.ReadAsStringAsync());
        return name;
    }

    /// <summary>An API client signed in as <paramref name="name"/> with a bearer token.</summary>
    public async Task<HttpClient> ApiAsync(string name)
    {
        var client = app.Client();
        var login = await (await client.PostAsJsonAsync("/api/login", new { username = name, password = Password })).Content.ReadFromJsonAsync<JsonObject>();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", login!["token"]!.GetValue<string>());
        return client;
    }

    public static async Task<string> ConversationAsync(HttpClient client, string[] members, string? title = null)
    {
        var response = await client.PostAsJsonAsync("/api/conversations", new { members, title });
        Assert.True(response.IsSuccessStatusCode, await response.Content.ReadAsStringAsync());
        return (await response.Content.ReadFromJsonAsync<JsonObject>())!["id"]!.GetValue<string>();
    }

    public static async Task<string> SendAsync(HttpClient client, string conversationId, string body)
    {
        var response = await client.PostAsJsonAsync("/api/messages", new { conversationId, body });
        Assert.True(response.IsSuccessStatusCode, await response.Content.ReadAsStringAsync());
        return (await response.Content.ReadFromJsonAsync<JsonObject>())!["id"]!.GetValue<string>();
    }

    /// <param name="bypassCsp">Only for axe-core, which Playwright injects as an inline script.</param>
    /// <param name="timeZone">An IANA zone for the browser's clock; the machine's when null.</param>
    public async Task<IBrowserContext> ContextAsync(int width = 1280, int? height = null, bool touch = false, bool dark = false, bool bypassCsp = false,
        bool reducedMotion = true, string? timeZone = null) =>
        await chromium.Browser.NewContextAsync(new BrowserNewContextOptions
        {
            BaseURL = app.BaseAddress.ToString(),
            ViewportSize = new ViewportSize { Width = width, Height = height ?? (width < 600 ? 740 : 800) },
            HasTouch = touch,
            IsMobile = touch,
            ColorScheme = dark ? ColorScheme.Dark : ColorScheme.Light,
            ReducedMotion = reducedMotion ? ReducedMotion.Reduce : ReducedMotion.NoPreference,
            TimezoneId = timeZone,
            Locale = "en-US",
            BypassCSP = bypassCsp,
            AcceptDownloads = true,
        });

    public async Task<IPage> SignedInAsync(string name, int width = 1280, int? height = null, bool touch = false, bool dark = false, bool bypassCsp = false,
        bool reducedMotion = true, string? timeZone = null, string? initScript = null, string password = Password)
    {
        var context = await ContextAsync(width, height, touch, dark, bypassCsp, reducedMotion, timeZone);
        if (initScript is not null) await context.AddInitScriptAsync(initScript);
        var page = await context.NewPageAsync();
        await SignInAsync(page, name, password);
        return page;
    }

    /// <summary>Signs in on the sign-in page of <paramref name="page"/> (in whatever browser context it has) and waits for the start page.</summary>
    public async Task SignInAsync(IPage page, string name, string password = Password)
    {
        // What the browser asked and got while signing in, for the failure message: a sign-in that
        // never reaches / otherwise says only "Timeout 30000ms exceeded".
        var exchanges = new List<string>();
        void Answered(object? _, IResponse r) { lock (exchanges) exchanges.Add($"{r.Request.Method} {r.Url} -> {r.Status}"); }
        void Failed(object? _, IRequest r) { lock (exchanges) exchanges.Add($"{r.Method} {r.Url} failed: {r.Failure}"); }
        page.Response += Answered;
        page.RequestFailed += Failed;
        await page.GotoAsync("/login");
        await page.GetByLabel("Username").FillAsync(name);
        await page.GetByLabel("Password").FillAsync(password);
        await page.GetByLabel("Password").PressAsync("Enter");
        try
        {
            await page.WaitForURLAsync(url => new Uri(url).AbsolutePath == "/");
        }
        catch (TimeoutException e)
        {
            string seen;
            lock (exchanges) seen = string.Join("\n  ", exchanges);
            var log = app.Log.Split('\n');
            throw new TimeoutException($"""
                Signing in as {name} did not reach / in time; the page is at {page.Url}.
                The browser's requests:
                  {seen}
                The app's last log lines:
                {string.Join('\n', log[Math.Max(0, log.Length - 40)..])}
                """, e);
        }
        finally
        {
            page.Response -= Answered;
            page.RequestFailed -= Failed;
        }
    }

    public static ILocator Messages(IPage page) => page.Locator("#messages li.message");

    public static ILocator Composer(IPage page) => page.GetByRole(AriaRole.Textbox, new() { Name = "Message" });

    public static async Task TypeAndSendAsync(IPage page, string text)
    {
        var composer = Composer(page);
        await composer.FillAsync(text);
        await composer.PressAsync("Enter");
        await Assertions.Expect(composer).ToHaveValueAsync("");
    }

    /// <summary>WCAG contrast ratio of two computed CSS colours (rgb()/rgba() strings), in the page.</summary>
    public const string ContrastScript = """
        ([a, b]) => {
          const parse = (c) => c.match(/[\d.]+/g).slice(0, 3).map(Number);
          const lum = (rgb) => { const [r, g, b] = rgb.map((v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; }); return 0.2126 * r + 0.7152 * g + 0.0722 * b; };
          const [l1, l2] = [lum(parse(a)), lum(parse(b))].sort((x, y) => y - x);
          return (l1 + 0.05) / (l2 + 0.05);
        }
        """;

    public static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Ams.sln"))) return dir.FullName;
        throw new InvalidOperationException("Ams.sln not found above the test binaries.");
    }
}
