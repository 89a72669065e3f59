using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using Ams.Testing;
using Microsoft.Playwright;

namespace Ams.Browser;

/// <summary>Account security in the browser: tokens shown once, sessions ended, the password changed, 2FA setup behind the password.</summary>
[Collection(BrowserCollection.Name)]
public sealed class SettingsTests(AppProcess app, Chromium chromium)
{
    const string Password = Driver.Password;
    const string NewPassword = "a much longer new passphrase";

    readonly Driver driver = new(app, chromium);

    Task<string> RegisterAsync() => driver.RegisterAsync("set");

    Task<IPage> SignedInAsync(string name, string password = Password) => driver.SignedInAsync(name, password: password);

    async Task<HttpStatusCode> StatusWithTokenAsync(string token, string path)
    {
        using var client = app.Client();
        using var request = new HttpRequestMessage(HttpMethod.Get, path);
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return (await client.SendAsync(request)).StatusCode;
    }

    [Fact]
    public async Task A_user_makes_a_token_ends_other_sessions_and_changes_the_password()
    {
        var name = await RegisterAsync();
        var page = await SignedInAsync(name);
        var other = await SignedInAsync(name);

        await page.GetByRole(AriaRole.Link, new() { Name = "Settings" }).ClickAsync();
        await page.WaitForURLAsync(url => new Uri(url).AbsolutePath == "/settings");

        // A token is shown once, as text, and works for the API but not for account security.
        await page.GetByLabel("Name", new() { Exact = true }).FillAsync("<img src=x onerror=alert(1)> bot");
        // Asked for the password again (a stolen session alone makes no token): a wrong one is said so and makes none.
        await page.GetByLabel("Your password").FillAsync("not my password");
        await page.GetByRole(AriaRole.Button, new() { Name = "Create token" }).ClickAsync();
        await Assertions.Expect(page.Locator("#tokens")).ToContainTextAsync("That password did not work.");
        Assert.Equal(0, await page.Locator("#tokens pre.token").CountAsync());
        await page.GetByLabel("Name", new() { Exact = true }).FillAsync("<img src=x onerror=alert(1)> bot");
        await page.GetByLabel("Your password").FillAsync(Password);
        await page.GetByRole(AriaRole.Button, new() { Name = "Create token" }).ClickAsync();
        var shown = page.Locator("#tokens pre.token");
        await Assertions.Expect(shown).ToBeVisibleAsync();
        var token = (await shown.TextContentAsync())!.Trim();
        Assert.StartsWith("amspat_", token);
        await Assertions.Expect(page.Locator("#tokens .name").First).ToHaveTextAsync("<img src=x onerror=alert(1)> bot");
        Assert.Equal(0, await page.Locator("#tokens img").CountAsync());
        Assert.Equal(HttpStatusCode.OK, await StatusWithTokenAsync(token, "/api/me"));
        Assert.Equal(HttpStatusCode.Forbidden, await StatusWithTokenAsync(token, "/api/sessions"));
        await page.ReloadAsync();
        Assert.Equal(0, await page.Locator("#tokens pre.token").CountAsync());

        // Ending the other sessions signs the other browser out.
        // The click does not wait for htmx's answer: the shortened list is the sign the sessions are gone.
        var sessions = page.Locator("#sessions ul.sessions > li");
        await Assertions.Expect(sessions).ToHaveCountAsync(2);
        await page.GetByRole(AriaRole.Button, new() { Name = "End all other sessions" }).ClickAsync();
        await Assertions.Expect(sessions).ToHaveCountAsync(1);
        // The other browser's open chat leaves the screen by itself: its stream ended with the session.
        await other.WaitForURLAsync(url => new Uri(url).AbsolutePath == "/login", new() { Timeout = 15_000 });

        // A new password ends every token; the old password stops working, the new one signs in.
        await page.GotoAsync("/settings");
        await page.GetByLabel("Current password").FillAsync(Password);
        await page.GetByLabel("New password (12–128 characters)").FillAsync(NewPassword);
        await page.GetByRole(AriaRole.Button, new() { Name = "Change password" }).ClickAsync();
        await Assertions.Expect(page.Locator("#password [role=status]")).ToContainTextAsync("Password changed");
        Assert.Equal(HttpStatusCode.Unauthorized, await StatusWithTokenAsync(token, "/api/me"));
        await page.GotoAsync("/");
        Assert.Equal("/", new Uri(page.Url).AbsolutePath);
        await SignedInAsync(name, NewPassword);
    }

    [Fact]
    public async Task Two_factor_setup_asks_for_the_password_first()
    {
        var page = await SignedInAsync(await RegisterAsync());
        await page.GotoAsync("/settings/2fa");
        await page.GetByLabel("Password").FillAsync("not my password at all");
        await page.GetByRole(AriaRole.Button, new() { Name = "Set up an authenticator app" }).ClickAsync();
        await Assertions.Expect(page.Locator("[role=alert]")).ToBeVisibleAsync();
        Assert.Equal(0, await page.Locator("img[src^='data:image/svg+xml']").CountAsync());
        await page.GetByLabel("Password").FillAsync(Password);
        await page.GetByRole(AriaRole.Button, new() { Name = "Set up an authenticator app" }).ClickAsync();
        await Assertions.Expect(page.Locator("img[src^='data:image/svg+xml']")).ToBeVisibleAsync();
    }
}
