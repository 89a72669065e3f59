using System.Net;
using Ams.Tests.Support;

namespace Ams.Tests.Browser;

/// <summary>The browser's path: pages, form posts with anti-forgery, and the session cookie.</summary>
public sealed partial class CookieFlowTests(Services services) : IClassFixture<Services>
{
    [Fact]
    public async Task Signing_in_sets_an_HttpOnly_SameSite_Strict_session_cookie_that_the_API_accepts()
    {
        var (browser, name) = await Browser.SignedInAsync(services);
        var cookie = Assert.Single(browser.LastSetCookies, c => c.StartsWith("ams_session="));
        Assert.Contains("httponly", cookie, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("samesite=strict", cookie, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("path=/", cookie, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("secure", cookie, StringComparison.OrdinalIgnoreCase);
        var me = await browser.GetAsync("/api/me");
        Assert.Equal(name, (await me.JsonAsync())["username"]!.GetValue<string>());
    }

    [Fact]
    public async Task Over_HTTPS_the_cookie_is_Secure_with_the_Host_prefix()
    {
        var (browser, _) = await Browser.SignedInAsync(services, https: true);
        var cookie = Assert.Single(browser.LastSetCookies, c => c.StartsWith("__Host-ams_session="));
        Assert.Contains("secure", cookie, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("path=/", cookie, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("domain=", cookie, StringComparison.OrdinalIgnoreCase);
        await browser.GetAsync("/api/me");
    }

    [Fact]
    public async Task A_form_post_without_the_anti_forgery_token_is_refused()
    {
        var app = await services.AppAsync();
        var name = Api.UniqueName("csrf");
        await app.RegisterAsync(name);
        var browser = new Browser(app);
        await browser.GetAsync("/login");
        var refused = await browser.PostFormAsync("/login", new() { ["username"] = name, ["password"] = Api.Password }, 403, withToken: false);
        await refused.ProblemAsync(403);
        Assert.False(browser.Has("ams_session"));
        var forged = await browser.PostFormAsync("/login",
            new() { ["username"] = name, ["password"] = Api.Password, ["_csrf"] = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" }, 403, withToken: false);
        await forged.ProblemAsync(403);
        // A cross-site page has no pre-session cookie at all.
        var stranger = new Browser(app);
        await stranger.PostFormAsync("/register", new() { ["username"] = Api.UniqueName(), ["password"] = Api.Password }, 403);
    }

    [Fact]
    public async Task Cookie_authenticated_API_writes_need_the_token_and_bearer_calls_do_not()
    {
        var (browser, _) = await Browser.SignedInAsync(services);
        await browser.GetAsync("/");   // the page carries the token for this session
        var refused = await (await browser.PostAsync("/api/logout", 403, csrfHeader: null)).ProblemAsync(403);
        Assert.Equal("Cookie-authenticated writes need the page's token in the X-CSRF-Token header or the _csrf form field.",
            refused["detail"]!.GetValue<string>());
        await browser.PostAsync("/api/logout", 403, csrfHeader: "wrong");
        await browser.GetAsync("/api/me");   // still signed in
        await browser.PostAsync("/api/logout", 204, csrfHeader: browser.Csrf);
        await browser.GetAsync("/api/me", 401);
    }

    [Fact]
    public async Task A_token_from_before_sign_in_does_not_work_for_the_session()
    {
        var app = await services.AppAsync();
        var name = Api.UniqueName("bind");
        await app.RegisterAsync(name);
        var browser = new Browser(app);
        await browser.GetAsync("/login");
        var preSessionToken = browser.Csrf;
        await browser.PostFormAsync("/login", new() { ["username"] = name, ["password"] = Api.Password }, 303);
        await browser.PostAsync("/api/logout", 403, csrfHeader: preSessionToken);
    }

    [Fact]
    public async Task The_logout_form_ends_the_session_and_clears_the_cookie()
    {
        var (browser, _) = await Browser.SignedInAsync(services);
        await browser.GetAsync("/");
        var result = await browser.PostFormAsync("/logout", new(), 303);
        Assert.Equal("/login", result.Context.Response.Headers.Location.ToString());
        Assert.Contains(browser.LastSetCookies, c => c.StartsWith("ams_session=;"));
        Assert.False(browser.Has("ams_session"));
        await browser.GetAsync("/api/me", 401);
    }

    [Fact]
    public async Task A_cookie_post_a_browser_marks_as_cross_site_is_refused_even_with_the_token()
    {
        var (browser, _) = await Browser.SignedInAsync(services);
        await browser.GetAsync("/");
        browser.Headers["Sec-Fetch-Site"] = "cross-site";
        var refused = await (await browser.PostFormAsync("/logout", new(), 403)).ProblemAsync(403);
        Assert.Equal("Cross-site request refused", refused["title"]!.GetValue<string>());
        await browser.PostAsync("/api/logout", 403, csrfHeader: browser.Csrf);
        // Reading is not writing; and the session is still there.
        await browser.GetAsync("/api/me", 200);
        foreach (var site in new[] { "same-origin", "same-site", "none" })
        {
            browser.Headers["Sec-Fetch-Site"] = site;
            await browser.GetAsync("/api/me", 200);
        }
        browser.Headers["Sec-Fetch-Site"] = "same-origin";
        await browser.PostFormAsync("/logout", new(), 303);
        await browser.GetAsync("/api/me", 401);
    }

    [Fact]
    public async Task Htmx_form_posts_get_HX_Redirect_and_errors_as_fragments()
    {
        var app = await services.AppAsync();
        var name = Api.UniqueName("hx");
        await app.RegisterAsync(name);
        var browser = new Browser(app);
        await browser.GetAsync("/login");
        var wrong = await browser.PostFormAsync("/login", new() { ["username"] = name, ["password"] = "not the password" }, 401, htmx: true);
        var fragment = await wrong.ReadAsTextAsync();
        Assert.StartsWith("<form id=\"login\"", fragment.Trim());
        Assert.Contains("Invalid username or password.", fragment);
        var ok = await browser.PostFormAsync("/login", new() { ["username"] = name, ["password"] = Api.Password }, 200, htmx: true);
        Assert.Equal("/", ok.Context.Response.Headers["HX-Redirect"].ToString());
    }

    [Fact]
    public async Task Registering_through_the_form_then_signing_in_shows_the_display_name_encoded()
    {
        var app = await services.AppAsync();
        var browser = new Browser(app);
        await browser.GetAsync("/register");
        var name = Api.UniqueName("form");
        const string evil = "<img src=x onerror=alert(1)>&\"'";
        var registered = await browser.PostFormAsync("/register",
            new() { ["username"] = name, ["password"] = Api.Password, ["displayName"] = evil }, 303);
        Assert.Equal("/login?registered=1", registered.Context.Response.Headers.Location.ToString());
        await browser.GetAsync("/login?registered=1");
        await browser.PostFormAsync("/login", new() { ["username"] = name, ["password"] = Api.Password }, 303);
        var home = await (await browser.GetAsync("/")).ReadAsTextAsync();
        Assert.DoesNotContain("<img src=x", home);
        Assert.Contains("&lt;img src=x onerror=alert(1)&gt;&amp;&quot;&#x27;", home);
    }

    [Fact]
    public async Task Form_validation_errors_come_back_in_the_form_with_the_input_encoded()
    {
        var app = await services.AppAsync();
        var browser = new Browser(app);
        await browser.GetAsync("/register");
        var result = await browser.PostFormAsync("/register",
            new() { ["username"] = "\"><script>x</script>", ["password"] = "short" }, 422, htmx: true);
        var html = await result.ReadAsTextAsync();
        Assert.Contains("role=\"alert\"", html);
        Assert.DoesNotContain("<script>x</script>", html);
        Assert.Contains("&quot;&gt;&lt;script&gt;", html);
    }

    [Fact]
    public async Task The_home_page_sends_anonymous_visitors_to_sign_in()
    {
        var app = await services.AppAsync();
        var result = await new Browser(app).GetAsync("/", 302);
        Assert.Equal("/login", result.Context.Response.Headers.Location.ToString());
    }

    [Fact]
    public async Task Two_factor_in_the_browser_enrol_then_sign_in_with_a_recovery_code()
    {
        var (browser, name) = await Browser.SignedInAsync(services);
        var settings = await (await browser.GetAsync("/settings/2fa")).ReadAsTextAsync();
        Assert.Contains("Two-factor authentication is off", settings);
        var enrol = await (await browser.PostFormAsync("/settings/2fa/setup", new() { ["password"] = Api.Password }, 200, htmx: true)).ReadAsTextAsync();
        Assert.Contains("src=\"data:image/svg+xml;base64,", enrol);
        var secret = System.Text.RegularExpressions.Regex.Match(enrol, "<code>([A-Z2-7]+)</code>").Groups[1].Value;
        var code = new OtpNet.Totp(OtpNet.Base32Encoding.ToBytes(secret)).ComputeTotp();
        // Pasted codes come with spaces; the form trims them (the JSON API does not).
        var shown = await (await browser.PostFormAsync("/settings/2fa/enable", new() { ["code"] = $" {code} " }, 200, htmx: true)).ReadAsTextAsync();
        var recovery = System.Text.RegularExpressions.Regex.Matches(shown, "<code>([a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4})</code>").Select(m => m.Groups[1].Value).ToList();
        Assert.Equal(10, recovery.Count);

        await browser.GetAsync("/");
        await browser.PostFormAsync("/logout", new(), 303);
        await browser.GetAsync("/login");
        var step = await browser.PostFormAsync("/login", new() { ["username"] = name, ["password"] = Api.Password }, 303);
        Assert.Equal("/login/2fa", step.Context.Response.Headers.Location.ToString());
        Assert.False(browser.Has("ams_session"));
        Assert.True(browser.Has("ams_2fa_challenge"));
        await browser.GetAsync("/login/2fa");
        await browser.PostFormAsync("/login/2fa", new() { ["code"] = "000000" }, 401);
        var done = await browser.PostFormAsync("/login/2fa", new() { ["code"] = $" {recovery[0]} " }, 303);
        Assert.Equal("/", done.Context.Response.Headers.Location.ToString());
        Assert.True(browser.Has("ams_session"));
        Assert.False(browser.Has("ams_2fa_challenge"));   // spent, so it is cleared
        Assert.Contains("Two-factor authentication: on", await (await browser.GetAsync("/")).ReadAsTextAsync());

        await browser.GetAsync("/settings/2fa");
        var off = await (await browser.PostFormAsync("/settings/2fa/disable",
            new() { ["password"] = Api.Password, ["code"] = $" {recovery[1]} " }, 200, htmx: true)).ReadAsTextAsync();
        Assert.Contains("Two-factor authentication is off", off);
    }

    [Fact]
    public async Task Each_two_factor_form_failure_says_why_and_shows_the_settings_as_they_really_are()
    {
        var (browser, _) = await Browser.SignedInAsync(services);
        await browser.GetAsync("/settings/2fa");
        async Task Form(string url, Dictionary<string, string> form, int status, string message, bool on)
        {
            var html = await (await browser.PostFormAsync(url, form, status, htmx: true)).ReadAsTextAsync();
            Assert.StartsWith("<", html.TrimStart());   // a fragment, not problem JSON
            Assert.Contains(message, html);
            Assert.Contains(on ? "Two-factor authentication is on" : "Two-factor authentication is off", html);
        }
        await Form("/settings/2fa/setup", new() { ["password"] = "not my password" }, 401, "That password did not work.", on: false);
        await Form("/settings/2fa/setup", new() { ["password"] = "" }, 422, "Password is required.", on: false);
        // Forms from a stale page: 2FA is off and nothing is set up.
        await Form("/settings/2fa/disable", new() { ["password"] = Api.Password, ["code"] = "123456" }, 400, "Two-factor authentication is not on.", on: false);
        await Form("/settings/2fa/recovery-codes", new() { ["password"] = Api.Password, ["code"] = "123456" }, 400, "Two-factor authentication is not on.", on: false);
        await Form("/settings/2fa/enable", new() { ["code"] = "123456" }, 400, "Start with the setup step.", on: false);
        async Task<byte[]> EnrolAsync()
        {
            var enrol = await (await browser.PostFormAsync("/settings/2fa/setup", new() { ["password"] = Api.Password }, 200, htmx: true)).ReadAsTextAsync();
            return OtpNet.Base32Encoding.ToBytes(System.Text.RegularExpressions.Regex.Match(enrol, "<code>([A-Z2-7]+)</code>").Groups[1].Value);
        }
        var secret = await EnrolAsync();
        // A mistyped or wrong code does not turn it on, and keeps the same key on screen for the
        // next code from the app's entry (a new key would make that entry useless).
        foreach (var (code, status, message) in new[] { ("12345", 422, "Code must be 6 digits."), ("000000", 401, "That code did not work.") })
        {
            var html = await (await browser.PostFormAsync("/settings/2fa/enable", new() { ["code"] = code }, status, htmx: true)).ReadAsTextAsync();
            Assert.Contains(message, html);
            Assert.Contains($"<code>{OtpNet.Base32Encoding.ToString(secret).TrimEnd('=')}</code>", html);
            Assert.DoesNotContain("Two-factor authentication is on", html);
        }
        await browser.PostFormAsync("/settings/2fa/enable", new() { ["code"] = new OtpNet.Totp(secret).ComputeTotp() }, 200, htmx: true);
        Assert.Contains("Two-factor authentication is on", await (await browser.GetAsync("/settings/2fa")).ReadAsTextAsync());

        await Form("/settings/2fa/enable", new() { ["code"] = "123456" }, 400, "Two-factor authentication is already on.", on: true);
        await Form("/settings/2fa/setup", new() { ["password"] = Api.Password }, 200, "Two-factor authentication is already on.", on: true);
        await Form("/settings/2fa/disable", new() { ["password"] = Api.Password, ["code"] = "12345" }, 422, "Code must be 6 digits or a recovery code.", on: true);
        await Form("/settings/2fa/disable", new() { ["password"] = Api.Password, ["code"] = "000000" }, 401, "That code or password did not work.", on: true);
        await Form("/settings/2fa/recovery-codes", new() { ["password"] = Api.Password, ["code"] = "12345" }, 422, "Code must be 6 digits", on: true);
        for (var i = 0; i < 4; i++)   // with the one above, the account's five wrong codes
            await Form("/settings/2fa/recovery-codes", new() { ["password"] = Api.Password, ["code"] = "000000" }, 401, "That code or password did not work.", on: true);
        await Form("/settings/2fa/disable", new() { ["password"] = Api.Password, ["code"] = "000000" }, 429, "Too many wrong codes. Wait and try again.", on: true);
    }

    [Fact]
    public async Task The_setup_form_answers_a_wrong_password_with_a_whole_page_and_its_lockout_leaves_the_section_off()
    {
        var (browser, _) = await Browser.SignedInAsync(services);
        await browser.GetAsync("/settings/2fa");
        var page = await (await browser.PostFormAsync("/settings/2fa/setup", new() { ["password"] = "not my password" }, 401)).ReadAsTextAsync();
        Assert.Contains("<title>Two-factor authentication · AMS</title>", page);
        Assert.Contains("That password did not work.", page);

        for (var i = 0; i < 4; i++)   // with the one above, the account's five failures
            await browser.PostFormAsync("/settings/2fa/setup", new() { ["password"] = "not my password" }, 401, htmx: true);
        var locked = await browser.PostFormAsync("/settings/2fa/setup", new() { ["password"] = Api.Password }, 429, htmx: true);
        var html = await locked.ReadAsTextAsync();
        Assert.Contains("Too many wrong codes. Wait and try again.", html);
        Assert.Contains("Two-factor authentication is off", html);
        Assert.DoesNotContain("Two-factor authentication is on", html);
        Assert.True(int.Parse(locked.Context.Response.Headers.RetryAfter.ToString()) > 0);
    }

    [Fact]
    public async Task The_second_sign_in_step_form_tells_a_malformed_code_from_a_lost_sign_in_and_locks_out_with_Retry_After()
    {
        var app = await services.AppAsync();
        var (name, _, _, _) = await app.TwoFactorUserAsync("sf");

        var browser = new Browser(app) { Address = "192.0.2.201" };
        async Task PasswordStepAsync()
        {
            await browser.GetAsync("/login");
            await browser.PostFormAsync("/login", new() { ["username"] = name, ["password"] = Api.Password }, 303);
            await browser.GetAsync("/login/2fa");
        }
        async Task<string> CodeAsync(string code, int status) => await (await browser.PostFormAsync("/login/2fa", new() { ["code"] = code }, status)).ReadAsTextAsync();

        await PasswordStepAsync();
        var malformed = await CodeAsync("12345", 422);
        Assert.Contains("Code must be 6 digits or a recovery code.", malformed);
        Assert.DoesNotContain("This sign-in has expired", malformed);
        Assert.Contains("<title>Two-factor authentication · AMS</title>", malformed);

        // No challenge cookie at all (and a malformed code too): the sign-in is lost, start over.
        var stranger = new Browser(app) { Address = "192.0.2.202" };
        await stranger.GetAsync("/login");
        Assert.Contains("This sign-in has expired. Start over with your password.",
            await (await stranger.PostFormAsync("/login/2fa", new() { ["code"] = "12345" }, 401)).ReadAsTextAsync());

        // Five wrong codes (a challenge takes three) lock the account: 429 with Retry-After.
        for (var i = 0; i < 3; i++) await CodeAsync("000000", 401);
        var burnt = await browser.PostFormAsync("/login/2fa", new() { ["code"] = "000000" }, 401);
        Assert.Contains("Too many wrong codes for this sign-in. Start over with your password.", await burnt.ReadAsTextAsync());
        Assert.False(burnt.Context.Response.Headers.ContainsKey("Retry-After"));
        await PasswordStepAsync();
        for (var i = 0; i < 2; i++) await CodeAsync("000000", 401);
        var locked = await browser.PostFormAsync("/login/2fa", new() { ["code"] = "000000" }, 429);
        Assert.Contains("Too many wrong codes. Wait and try again.", await locked.ReadAsTextAsync());
        Assert.True(int.Parse(locked.Context.Response.Headers.RetryAfter.ToString()) > 0);
    }

    [Fact]
    public async Task A_browser_that_signed_in_before_gets_in_while_strangers_are_throttled()
    {
        var (browser, name) = await Browser.SignedInAsync(services);
        var device = Assert.Single(browser.LastSetCookies, c => c.StartsWith("ams_device="));
        Assert.Contains("httponly", device, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("samesite=strict", device, StringComparison.OrdinalIgnoreCase);
        var app = await services.AppAsync();
        for (var i = 0; i < 5; i++)
            await app.Scenario(s =>
            {
                s.Post.Json(new { username = name, password = "wrong password!" }).ToUrl("/api/login");
                s.From($"198.51.100.{200 + i}");
                s.StatusCodeShouldBe(401);
            });
        var stranger = new Browser(app) { Address = "198.51.100.210" };
        await stranger.GetAsync("/login");
        await stranger.PostFormAsync("/login", new() { ["username"] = name, ["password"] = Api.Password }, 429);
        await browser.GetAsync("/");
        await browser.PostFormAsync("/logout", new(), 303);
        await browser.GetAsync("/login");
        await browser.PostFormAsync("/login", new() { ["username"] = name, ["password"] = Api.Password }, 303);
        Assert.True(browser.Has("ams_session"));
    }

    [Fact]
    public async Task Over_HTTPS_the_second_factor_challenge_cookie_has_the_Host_prefix()
    {
        var app = await services.AppAsync();
        var name = Api.UniqueName("hosttf");
        await app.RegisterAsync(name);
        var token = await app.LoginAsync(name);
        var setup = await (await app.Scenario(s =>
        {
            s.Post.Json(new { password = Api.Password }).ToUrl("/api/2fa/setup");
            s.WithBearerToken(token);
        })).JsonAsync();
        var secret = OtpNet.Base32Encoding.ToBytes(setup["secret"]!.GetValue<string>());
        await app.Scenario(s =>
        {
            s.Post.Json(new { code = new OtpNet.Totp(secret).ComputeTotp() }).ToUrl("/api/2fa/enable");
            s.WithBearerToken(token);
        });
        var browser = new Browser(app, https: true);
        await browser.GetAsync("/login");
        await browser.PostFormAsync("/login", new() { ["username"] = name, ["password"] = Api.Password }, 303);
        var cookie = Assert.Single(browser.LastSetCookies, c => c.Contains("ams_2fa_challenge="));
        Assert.StartsWith("__Host-ams_2fa_challenge=", cookie);
        Assert.Contains("secure", cookie, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("path=/", cookie, StringComparison.OrdinalIgnoreCase);
        await browser.GetAsync("/login/2fa");
        var wrong = await browser.PostFormAsync("/login/2fa", new() { ["code"] = "000000" }, 401);
        Assert.Contains("That code did not work.", await wrong.ReadAsTextAsync());
    }

    [Fact]
    public async Task Signing_in_again_in_the_same_browser_ends_the_session_of_the_cookie_it_replaces()
    {
        var (browser, name) = await Browser.SignedInAsync(services);
        var app = await services.AppAsync();
        var old = SessionToken(browser.LastSetCookies);
        await app.Scenario(s => { s.Get.Url("/api/me"); s.WithBearerToken(old); s.StatusCodeShouldBe(200); });
        await browser.GetAsync("/login");
        await browser.PostFormAsync("/login", new() { ["username"] = name, ["password"] = Api.Password }, 303);
        var current = SessionToken(browser.LastSetCookies);
        Assert.NotEqual(old, current);
        // Old code: the replaced session stayed valid though no browser holds it any more.
        await app.Scenario(s => { s.Get.Url("/api/me"); s.WithBearerToken(old); s.StatusCodeShouldBe(401); });
        await app.Scenario(s => { s.Get.Url("/api/me"); s.WithBearerToken(current); s.StatusCodeShouldBe(200); });
    }

    [Fact]
    public async Task The_settings_page_changes_the_password_lists_sessions_and_makes_a_token_shown_once_all_encoded()
    {
        var (browser, name) = await Browser.SignedInAsync(services);
        var app = await services.AppAsync();
        // A second session with a hostile user agent: shown as text.
        await app.Scenario(s =>
        {
            s.Post.Json(new { username = name, password = Api.Password }).ToUrl("/api/login");
            s.WithRequestHeader("User-Agent", "<script>alert(1)</script>");
            s.StatusCodeShouldBe(200);
        });
        var page = await (await browser.GetAsync("/settings")).ReadAsTextAsync();
        foreach (var section in new[] { "id=\"password\"", "id=\"sessions\"", "id=\"tokens\"", "id=\"security-history\"" })
            Assert.Contains(section, page);
        Assert.DoesNotContain("<script>alert(1)</script>", page);
        Assert.Contains("&lt;script&gt;alert(1)&lt;/script&gt;", page);
        Assert.Contains("name=\"_csrf\"", page);
        Assert.Contains("href=\"/settings\"", await (await browser.GetAsync("/")).ReadAsTextAsync());

        var refused = await (await browser.PostFormAsync("/settings/tokens", new() { ["name"] = "stolen", ["expiresInDays"] = "30", ["password"] = "not the password" }, 401, htmx: true)).ReadAsTextAsync();
        Assert.Contains("That password did not work.", refused);
        Assert.DoesNotMatch("amspat_|stolen", refused);
        var created = await (await browser.PostFormAsync("/settings/tokens", new() { ["name"] = "<i>bot</i>", ["expiresInDays"] = "30", ["password"] = Api.Password }, 200, htmx: true)).ReadAsTextAsync();
        Assert.Contains("&lt;i&gt;bot&lt;/i&gt;", created);
        Assert.Matches("amspat_[A-Za-z0-9_-]{43}", created);
        Assert.DoesNotMatch("amspat_", await (await browser.GetAsync("/settings")).ReadAsTextAsync());
        await services.SqlAsync($"""
            INSERT INTO access_tokens (user_id, name, token_hash, created_at)
            SELECT {await services.UserIdAsync(name)}, CONCAT('t', seq), SHA2(CONCAT('{name}/', seq), 256), UTC_TIMESTAMP(3) FROM seq_1_to_99
            """);
        var full = await (await browser.PostFormAsync("/settings/tokens", new() { ["name"] = "one too many", ["password"] = Api.Password }, 409, htmx: true)).ReadAsTextAsync();
        Assert.Contains("An account may hold 100 tokens; revoke one first.", full);
        Assert.DoesNotMatch("amspat_|one too many", full);

        await browser.PostFormAsync("/settings/password", new() { ["currentPassword"] = "wrong wrong wrong", ["newPassword"] = "another fine passphrase" }, 401, htmx: true);
        var changed = await (await browser.PostFormAsync("/settings/password",
            new() { ["currentPassword"] = Api.Password, ["newPassword"] = "another fine passphrase" }, 200, htmx: true)).ReadAsTextAsync();
        Assert.Contains("Password changed", changed);
        await browser.GetAsync("/settings");   // this session stays
        await browser.PostFormAsync("/settings/sessions/revoke-others", new(), 200, htmx: true);
        await browser.PostFormAsync("/settings/password", new() { ["currentPassword"] = "x", ["newPassword"] = "y" }, 403, withToken: false);
    }

    static string SessionToken(IEnumerable<string> setCookies) =>
        setCookies.Select(c => c.Split(';')[0]).Single(c => c.StartsWith("ams_session=", StringComparison.Ordinal))["ams_session=".Length..];
}
