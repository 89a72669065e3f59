using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Ams.Testing;
using Microsoft.Playwright;

namespace Ams.Browser;

[CollectionDefinition(Name)]
public sealed class BrowserCollection : ICollectionFixture<AppProcess>, ICollectionFixture<Chromium>
{
    public const string Name = "browser";
}

/// <summary>The chat as people use it: real Chromium, the AOT binary, real MariaDB and Redis.</summary>
[Collection(BrowserCollection.Name)]
public sealed class ChatTests(AppProcess app, Chromium chromium)
{
    const string Password = Driver.Password;
    static readonly string Screenshots = Path.Combine(RepositoryRoot(), "artifacts", "screenshots");

    readonly Driver driver = new(app, chromium);

    Task<string> RegisterAsync(string prefix, string? displayName = null) => driver.RegisterAsync(prefix, displayName);

    Task<IPage> SignedInAsync(string name, int width = 1280) => driver.SignedInAsync(name, width);

    static async Task<string> StartChatAsync(IPage page, string with, string? title = null)
    {
        await page.GetByLabel("With (usernames, comma-separated)").FillAsync(with);
        if (title is not null) await page.GetByLabel("Group title").FillAsync(title);
        await page.GetByRole(AriaRole.Button, new() { Name = "Start" }).ClickAsync();
        await page.WaitForURLAsync(url => new Uri(url).AbsolutePath.StartsWith("/c/"));
        return new Uri(page.Url).AbsolutePath;
    }

    static async Task SendAsync(IPage page, string text)
    {
        var composer = page.GetByRole(AriaRole.Textbox, new() { Name = "Message" });
        await composer.FillAsync(text);
        await composer.PressAsync("Enter");
        await Assertions.Expect(composer).ToHaveValueAsync("");
    }

    static ILocator Messages(IPage page) => page.Locator("#messages li.message");

    [Fact]
    public async Task Two_users_chat_live_with_read_receipts_and_a_third_sees_nothing()
    {
        var alice = await RegisterAsync("alice", "Alice A.");
        var bob = await RegisterAsync("bob", "Bob B.");
        var carol = await RegisterAsync("carol");
        var alicePage = await SignedInAsync(alice);
        var bobPage = await SignedInAsync(bob);
        var carolPage = await SignedInAsync(carol);

        var path = await StartChatAsync(alicePage, bob);
        await SendAsync(alicePage, "Hello Bob!\nSecond line.");
        await Assertions.Expect(Messages(alicePage)).ToHaveCountAsync(1);

        // Bob's list updates live, with an unread badge and the preview.
        var bobItem = bobPage.Locator("#conversations li").First;
        await Assertions.Expect(bobItem.Locator(".badge")).ToHaveTextAsync("1");
        await Assertions.Expect(bobItem.Locator(".preview")).ToContainTextAsync("Hello Bob!");
        await bobItem.Locator("a").ClickAsync();
        await bobPage.WaitForURLAsync(url => new Uri(url).AbsolutePath == path);
        await Assertions.Expect(Messages(bobPage).First.Locator("p")).ToHaveTextAsync("Hello Bob!\nSecond line.");

        // Opening it reads it: Alice gets the receipt.
        await Assertions.Expect(alicePage.Locator("#receipt")).ToContainTextAsync("Seen by Bob B.");
        await SendAsync(bobPage, "Hi Alice");
        await Assertions.Expect(Messages(alicePage)).ToHaveCountAsync(2);
        await Assertions.Expect(Messages(alicePage).Last).ToContainTextAsync("Hi Alice");
        await Assertions.Expect(Messages(bobPage).Last).ToHaveClassAsync(new System.Text.RegularExpressions.Regex("mine"));
        // Alice has the conversation open, so Bob's reply is read at once: no unread badge.
        await Assertions.Expect(alicePage.Locator("#conversations li .badge")).ToHaveCountAsync(0);

        await carolPage.ReloadAsync();
        await Assertions.Expect(carolPage.Locator("#conversations li")).ToHaveCountAsync(0);
        Assert.DoesNotContain("Hello Bob", await carolPage.ContentAsync());

        Directory.CreateDirectory(Screenshots);
        await alicePage.ScreenshotAsync(new() { Path = Path.Combine(Screenshots, "chat-1280.png") });
        var phone = await SignedInAsync(bob, width: 375);
        await phone.GotoAsync(path);
        await Assertions.Expect(Messages(phone)).ToHaveCountAsync(2);
        await phone.ScreenshotAsync(new() { Path = Path.Combine(Screenshots, "chat-375.png") });
        await phone.GotoAsync("/");
        await phone.ScreenshotAsync(new() { Path = Path.Combine(Screenshots, "list-375.png") });
    }

    [Fact]
    public async Task An_XSS_payload_shows_as_text()
    {
        var alice = await RegisterAsync("xa", "<img src=x onerror=\"window.__pwned=1\">");
        var bob = await RegisterAsync("xb");
        var alicePage = await SignedInAsync(alice);
        var bobPage = await SignedInAsync(bob);
        var path = await StartChatAsync(alicePage, bob);
        const string payload = "<script>window.__pwned=2</script><img src=x onerror=\"window.__pwned=3\">";
        await SendAsync(alicePage, payload);
        await bobPage.GotoAsync(path);
        await Assertions.Expect(Messages(bobPage).First.Locator("p")).ToHaveTextAsync(payload);
        await Assertions.Expect(Messages(bobPage).First.Locator(".sender")).ToHaveTextAsync("<img src=x onerror=\"window.__pwned=1\">");
        Assert.Equal(0, await bobPage.Locator("#messages img, #messages script").CountAsync());
        Assert.Null(await bobPage.EvaluateAsync<int?>("() => window.__pwned ?? null"));
        Assert.Null(await alicePage.EvaluateAsync<int?>("() => window.__pwned ?? null"));
    }

    [Fact]
    public async Task Signing_in_with_two_factor_authentication()
    {
        var name = await RegisterAsync("tf");
        using var client = app.Client();
        var login = await (await client.PostAsJsonAsync("/api/login", new { username = name, password = Password })).Content.ReadFromJsonAsync<JsonObject>();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", login!["token"]!.GetValue<string>());
        var setup = await (await client.PostAsJsonAsync("/api/2fa/setup", new { password = Password })).Content.ReadFromJsonAsync<JsonObject>();
        var secret = OtpNet.Base32Encoding.ToBytes(setup!["secret"]!.GetValue<string>());
        // The step is the one the code comes from: two readings of the clock could straddle a step's end.
        var enabledAt = DateTime.UtcNow;
        var enabledInStep = new DateTimeOffset(enabledAt).ToUnixTimeSeconds() / 30;
        Assert.True((await client.PostAsJsonAsync("/api/2fa/enable", new { code = new OtpNet.Totp(secret).ComputeTotp(enabledAt) })).IsSuccessStatusCode);

        var context = await chromium.Browser.NewContextAsync(new BrowserNewContextOptions { BaseURL = app.BaseAddress.ToString() });
        var page = await context.NewPageAsync();
        await page.GotoAsync("/login");
        await page.GetByLabel("Username").FillAsync(name);
        await page.GetByLabel("Password").FillAsync(Password);
        await page.GetByRole(AriaRole.Button, new() { Name = "Sign in" }).ClickAsync();
        await page.WaitForURLAsync(url => new Uri(url).AbsolutePath == "/login/2fa");
        var code = page.GetByLabel("Code from your authenticator app, or a recovery code");
        await code.FillAsync("000000");
        await code.PressAsync("Enter");
        await Assertions.Expect(page.GetByRole(AriaRole.Alert)).ToContainTextAsync("did not work");
        // The replay guard refuses a second code from the step that enabled 2FA: wait for the next step.
        var totp = new OtpNet.Totp(secret);
        if (DateTimeOffset.UtcNow.ToUnixTimeSeconds() / 30 == enabledInStep) await Task.Delay(TimeSpan.FromSeconds(totp.RemainingSeconds() + 1));
        var fresh = totp.ComputeTotp();
        await page.GetByLabel("Code from your authenticator app, or a recovery code").FillAsync(fresh);
        await page.GetByLabel("Code from your authenticator app, or a recovery code").PressAsync("Enter");
        await page.WaitForURLAsync(url => new Uri(url).AbsolutePath == "/");
        await Assertions.Expect(page.Locator(".account")).ToContainTextAsync("Two-factor authentication: on");
    }

    [Fact]
    public async Task After_an_app_restart_the_page_catches_up_with_messages_sent_meanwhile_exactly_once()
    {
        var alice = await RegisterAsync("ra");
        var bob = await RegisterAsync("rb");
        var bobPage = await SignedInAsync(bob);
        using var client = app.Client();
        var login = await (await client.PostAsJsonAsync("/api/login", new { username = alice, password = Password })).Content.ReadFromJsonAsync<JsonObject>();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", login!["token"]!.GetValue<string>());
        var direct = await (await client.PostAsJsonAsync("/api/messages", new { to = bob, body = "before the restart" })).Content.ReadFromJsonAsync<JsonObject>();
        await bobPage.GotoAsync($"/c/{direct!["conversationId"]!.GetValue<string>()}");
        await Assertions.Expect(Messages(bobPage)).ToHaveCountAsync(1);

        await app.RestartAsync();
        for (var i = 1; i <= 3; i++)
            Assert.True((await client.PostAsJsonAsync("/api/messages", new { to = bob, body = $"meanwhile {i}" })).IsSuccessStatusCode);

        await Assertions.Expect(Messages(bobPage)).ToHaveCountAsync(4, new() { Timeout = 30_000 });
        for (var i = 1; i <= 3; i++)
            await Assertions.Expect(Messages(bobPage).Filter(new() { HasText = $"meanwhile {i}" })).ToHaveCountAsync(1);
        await Assertions.Expect(Messages(bobPage).Filter(new() { HasText = "before the restart" })).ToHaveCountAsync(1);
    }

    static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Ams.sln"))) return dir.FullName;
        throw new InvalidOperationException("Ams.sln not found above the test binaries.");
    }
}
