using System.Text;
using Ams.Testing;
using Ams.Tests.Account;
using Ams.Tests.Messaging;
using Ams.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using OtpNet;

namespace Ams.Tests.TwoFactor;

/// <summary>TOTP enrolment, login step-up, recovery codes and the guards, on a fake clock.</summary>
public sealed class TwoFactorTests(Services services) : IClassFixture<Services>, IAsyncLifetime
{
    readonly FakeTimeProvider clock = new(new DateTimeOffset(2026, 11, 25, 12, 0, 10, TimeSpan.Zero));
    IAlbaHost app = null!;

    public async Task InitializeAsync() => app = await NodeAsync();
    public async Task DisposeAsync() => await app.DisposeAsync();

    Task<IAlbaHost> NodeAsync(string? redis = null) =>
        services.StartAppAsync(redis: redis, services: s => s.AddSingleton<TimeProvider>(clock));

    sealed record Enrolled(string Name, string Token, byte[] Secret, List<string> RecoveryCodes);

    string Code(byte[] secret, TimeSpan? offset = null) => new Totp(secret).ComputeTotp((clock.GetUtcNow() + (offset ?? TimeSpan.Zero)).UtcDateTime);

    static Task<IScenarioResult> Post(IAlbaHost host, string url, object? body, string? token, int status) => host.Scenario(s =>
    {
        if (body is null) s.Post.Url(url); else s.Post.Json(body).ToUrl(url);
        if (token is not null) s.WithBearerToken(token);
        s.From("192.0.2.77");
        s.StatusCodeShouldBe(status);
    });

    async Task<(string Name, string Token, byte[] Secret, JsonNode Setup)> SetUpAsync()
    {
        var name = Api.UniqueName("tf");
        await app.RegisterAsync(name);
        var token = await app.LoginAsync(name);
        var setup = await (await Post(app, "/api/2fa/setup", new { password = Api.Password }, token, 200)).JsonAsync();
        return (name, token, Base32Encoding.ToBytes(setup["secret"]!.GetValue<string>()), setup);
    }

    async Task<Enrolled> EnrolAsync()
    {
        var (name, token, secret, _) = await SetUpAsync();
        var enabled = await (await Post(app, "/api/2fa/enable", new { code = Code(secret) }, token, 200)).JsonAsync();
        clock.Advance(TimeSpan.FromSeconds(30));   // the enabling code's step is used up
        return new Enrolled(name, token, secret, enabled["recoveryCodes"]!.AsArray().Select(c => c!.GetValue<string>()).ToList());
    }

    async Task<string> ChallengeAsync(IAlbaHost host, string name)
    {
        var body = await (await Post(host, "/api/login", new { username = name, password = Api.Password }, null, 200)).JsonAsync();
        Assert.True(body["twoFactorRequired"]!.GetValue<bool>());
        Assert.Null(body["token"]);
        return body["challenge"]!.GetValue<string>();
    }

    [Fact]
    public async Task A_challenge_from_before_a_password_change_signs_nobody_in_and_uses_up_no_code()
    {
        // The password step would refuse the old password now; its challenge went on working.
        var user = await EnrolAsync();
        var challenge = await ChallengeAsync(app, user.Name);
        var another = await ChallengeAsync(app, user.Name);
        await Post(app, "/api/account/password", new { currentPassword = Api.Password, newPassword = "a brand new passphrase 42" }, user.Token, 204);
        var refused = await (await Post(app, "/api/login/2fa", new { challenge, code = Code(user.Secret) }, null, 401)).ProblemAsync(401);
        Assert.Equal("Invalid or expired challenge", refused["title"].Str());
        Assert.Equal("Invalid or expired challenge",
            (await (await Post(app, "/api/login/2fa", new { challenge = another, code = user.RecoveryCodes[0] }, null, 401)).ProblemAsync(401))["title"].Str());
        // Challenges made for the new password work, with the same step's code and that recovery
        // code: a dead challenge used up neither (it burnt the step, and the right code then counted as wrong).
        foreach (var code in new[] { Code(user.Secret), user.RecoveryCodes[0] })
        {
            var body = await (await Post(app, "/api/login", new { username = user.Name, password = "a brand new passphrase 42" }, null, 200)).JsonAsync();
            await Post(app, "/api/login/2fa", new { challenge = body["challenge"].Str(), code }, null, 200);
        }
    }

    [Fact]
    public async Task Setup_gives_a_160_bit_secret_an_otpauth_uri_and_an_svg_qr_code_and_stays_pending()
    {
        var (name, token, secret, setup) = await SetUpAsync();
        Assert.Equal(20, secret.Length);
        var uri = setup["otpauthUri"]!.GetValue<string>();
        Assert.StartsWith($"otpauth://totp/AMS:{name}?secret={setup["secret"]!.GetValue<string>()}", uri);
        Assert.Contains("issuer=AMS", uri);
        Assert.StartsWith("<svg", setup["qrSvg"]!.GetValue<string>());
        var me = await (await app.Scenario(s => { s.Get.Url("/api/me"); s.WithBearerToken(token); })).JsonAsync();
        Assert.False(me["twoFactorEnabled"]!.GetValue<bool>());
        await app.LoginAsync(name);   // pending: the password alone still signs in
        await Post(app, "/api/2fa/setup", new { password = Api.Password }, null, 401);
    }

    [Fact]
    public async Task Enabling_needs_a_right_code_returns_ten_distinct_recovery_codes_and_then_setup_is_409()
    {
        var (_, token, secret, _) = await SetUpAsync();
        var wrongCode = await (await Post(app, "/api/2fa/enable", new { code = Code(secret, TimeSpan.FromMinutes(5)) }, token, 401)).ProblemAsync(401);
        Assert.Equal("Invalid code", wrongCode["title"].Str());
        await Post(app, "/api/2fa/enable", new { code = "12ab56" }, token, 400);
        var codes = (await (await Post(app, "/api/2fa/enable", new { code = Code(secret) }, token, 200)).JsonAsync())["recoveryCodes"]!.AsArray()
            .Select(c => c!.GetValue<string>()).ToList();
        Assert.Equal(10, codes.Distinct().Count());
        Assert.All(codes, c => Assert.Matches("^[a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4}$", c));
        var me = await (await app.Scenario(s => { s.Get.Url("/api/me"); s.WithBearerToken(token); })).JsonAsync();
        Assert.True(me["twoFactorEnabled"]!.GetValue<bool>());
        await (await Post(app, "/api/2fa/setup", new { password = Api.Password }, token, 409)).ProblemAsync(409);
    }

    [Fact]
    public async Task The_secret_is_not_in_the_raw_rows()
    {
        var (_, _, secret, setup) = await SetUpAsync();
        var dump = await services.SqlAsync("SELECT user_id, HEX(secret), secret FROM two_factor; SELECT HEX(wrapped) FROM data_keys;");
        Assert.DoesNotContain(setup["secret"]!.GetValue<string>(), dump);
        Assert.DoesNotContain(Convert.ToHexString(secret), dump);
        Assert.DoesNotContain(Encoding.Latin1.GetString(secret), dump);
    }

    [Fact]
    public async Task The_challenge_alone_opens_nothing_and_a_code_turns_it_into_a_session()
    {
        var user = await EnrolAsync();
        var challenge = await ChallengeAsync(app, user.Name);
        await app.Scenario(s => { s.Get.Url("/api/me"); s.WithBearerToken(challenge); s.StatusCodeShouldBe(401); });
        await Post(app, "/api/logout", null, challenge, 401);
        await Post(app, "/api/login/2fa", new { challenge, code = Code(user.Secret, TimeSpan.FromMinutes(5)) }, null, 401);
        var login = await (await Post(app, "/api/login/2fa", new { challenge, code = Code(user.Secret) }, null, 200)).JsonAsync();
        var token = login["token"]!.GetValue<string>();
        Assert.Equal(user.Name, login["user"]!["username"]!.GetValue<string>());
        Assert.True(login["user"]!["twoFactorEnabled"]!.GetValue<bool>());
        await app.Scenario(s => { s.Get.Url("/api/me"); s.WithBearerToken(token); s.StatusCodeShouldBe(200); });
        // The history has the wrong code and the sign-in it completed (the failure is written in
        // the background, so in either order).
        var deadline = DateTime.UtcNow.AddSeconds(10);
        string[] kinds;
        while ((kinds = (await app.SecurityEventsAsync(token, "?limit=2")).Select(e => e!["kind"].Str()).ToArray()).Length < 2 && DateTime.UtcNow < deadline)
            await Task.Delay(50);
        Assert.Equal(["login", "login.failed"], kinds.Order(StringComparer.Ordinal));
        // Single use.
        clock.Advance(TimeSpan.FromSeconds(30));
        await Post(app, "/api/login/2fa", new { challenge, code = Code(user.Secret) }, null, 401);
    }

    [Fact]
    public async Task A_replayed_code_is_refused_on_this_node_and_on_another()
    {
        var user = await EnrolAsync();
        var code = Code(user.Secret);
        await Post(app, "/api/login/2fa", new { challenge = await ChallengeAsync(app, user.Name), code }, null, 200);
        await Post(app, "/api/login/2fa", new { challenge = await ChallengeAsync(app, user.Name), code }, null, 401);
        await using var node2 = await NodeAsync();
        await Post(node2, "/api/login/2fa", new { challenge = await ChallengeAsync(node2, user.Name), code }, null, 401);
        clock.Advance(TimeSpan.FromSeconds(30));
        await Post(node2, "/api/login/2fa", new { challenge = await ChallengeAsync(node2, user.Name), code = Code(user.Secret) }, null, 200);
    }

    [Fact]
    public async Task A_used_code_stays_used_after_Redis_loses_its_data()
    {
        var user = await EnrolAsync();
        var code = Code(user.Secret);
        await Post(app, "/api/login/2fa", new { challenge = await ChallengeAsync(app, user.Name), code }, null, 200);
        var userId = (await (await app.GetAsync("/api/me", user.Token, 200)).JsonAsync())["id"]!.GetValue<string>();
        await using (var redis = await StackExchange.Redis.ConnectionMultiplexer.ConnectAsync(services.Redis.ConnectionString))
            Assert.True(await redis.GetDatabase().KeyDeleteAsync($"{Ams.Infrastructure.Redis.KeyPrefix}totp-step:{userId}"));
        await Post(app, "/api/login/2fa", new { challenge = await ChallengeAsync(app, user.Name), code }, null, 401);
        // The step before, never used, is refused too: taken steps only move forward.
        await Post(app, "/api/login/2fa", new { challenge = await ChallengeAsync(app, user.Name), code = Code(user.Secret, TimeSpan.FromSeconds(-30)) }, null, 401);
        clock.Advance(TimeSpan.FromSeconds(30));
        await Post(app, "/api/login/2fa", new { challenge = await ChallengeAsync(app, user.Name), code = Code(user.Secret) }, null, 200);
    }

    [Fact]
    public async Task Once_a_step_is_accepted_that_step_and_the_one_before_are_refused_on_both_nodes()
    {
        var user = await EnrolAsync();
        // Far from the enabling step, so step N − 1 has never been used: only "later than the last
        // accepted step" refuses it, not "not this exact step again".
        clock.Advance(TimeSpan.FromMinutes(3));
        var previous = Code(user.Secret, TimeSpan.FromSeconds(-30));
        var current = Code(user.Secret);
        Assert.NotEqual(previous, current);
        await Post(app, "/api/login/2fa", new { challenge = await ChallengeAsync(app, user.Name), code = current }, null, 200);
        await using var node2 = await NodeAsync();
        foreach (var node in new[] { app, node2 })
            foreach (var code in new[] { previous, current })
                await Post(node, "/api/login/2fa", new { challenge = await ChallengeAsync(node, user.Name), code }, null, 401);
        clock.Advance(TimeSpan.FromSeconds(30));
        await Post(node2, "/api/login/2fa", new { challenge = await ChallengeAsync(node2, user.Name), code = Code(user.Secret) }, null, 200);
    }

    [Fact]
    public async Task A_code_one_step_old_is_accepted_and_two_steps_old_is_not()
    {
        var user = await EnrolAsync();
        clock.Advance(TimeSpan.FromMinutes(2));
        await Post(app, "/api/login/2fa", new { challenge = await ChallengeAsync(app, user.Name), code = Code(user.Secret, TimeSpan.FromSeconds(-60)) }, null, 401);
        await Post(app, "/api/login/2fa", new { challenge = await ChallengeAsync(app, user.Name), code = Code(user.Secret, TimeSpan.FromSeconds(-30)) }, null, 200);
    }

    [Fact]
    public async Task Each_recovery_code_works_exactly_once()
    {
        var user = await EnrolAsync();
        var code = user.RecoveryCodes[3];
        await Post(app, "/api/login/2fa", new { challenge = await ChallengeAsync(app, user.Name), code = code.ToUpperInvariant() }, null, 200);
        await Post(app, "/api/login/2fa", new { challenge = await ChallengeAsync(app, user.Name), code }, null, 401);
        await Post(app, "/api/login/2fa", new { challenge = await ChallengeAsync(app, user.Name), code = user.RecoveryCodes[4].Replace("-", "") }, null, 200);
    }

    [Fact]
    public async Task Three_wrong_codes_burn_the_challenge()
    {
        var user = await EnrolAsync();
        var challenge = await ChallengeAsync(app, user.Name);
        var wrong = await (await Post(app, "/api/login/2fa", new { challenge, code = "000000" }, null, 401)).ProblemAsync(401);
        Assert.Equal("Invalid code", wrong["title"]!.GetValue<string>());
        for (var i = 0; i < 2; i++) await Post(app, "/api/login/2fa", new { challenge, code = "000000" }, null, 401);
        // api.md: past the challenge's limit even a correct code is refused, and for good: 401, sign in
        // again, with no Retry-After (waiting would only see the challenge expire).
        var spent = await Post(app, "/api/login/2fa", new { challenge, code = Code(user.Secret) }, null, 401);
        var problem = await spent.ProblemAsync(401);
        Assert.Equal(("Too many wrong codes for this challenge", "Sign in with your password again."), (problem["title"]!.GetValue<string>(), problem["detail"]!.GetValue<string>()));
        Assert.False(spent.Context.Response.Headers.ContainsKey("Retry-After"));
        // Refused attempts on the dead challenge are not counted: a fresh challenge takes two more
        // wrong codes (the account's fifth failure) before the account's own limit answers 429.
        for (var i = 0; i < 3; i++) await Post(app, "/api/login/2fa", new { challenge, code = "000000" }, null, 401);
        var fresh = await ChallengeAsync(app, user.Name);
        for (var i = 0; i < 2; i++) await Post(app, "/api/login/2fa", new { challenge = fresh, code = "000000" }, null, 401);
        await Post(app, "/api/login/2fa", new { challenge = await ChallengeAsync(app, user.Name), code = Code(user.Secret) }, null, 429);
    }

    [Fact]
    public async Task A_fresh_challenge_after_a_burnt_one_signs_in()
    {
        var user = await EnrolAsync();
        var challenge = await ChallengeAsync(app, user.Name);
        for (var i = 0; i < 3; i++) await Post(app, "/api/login/2fa", new { challenge, code = "000000" }, null, 401);
        await Post(app, "/api/login/2fa", new { challenge, code = Code(user.Secret) }, null, 401);
        // The account has two wrong codes left, and a right one on a new challenge clears them.
        await Post(app, "/api/login/2fa", new { challenge = await ChallengeAsync(app, user.Name), code = Code(user.Secret) }, null, 200);
    }

    [Fact]
    public async Task A_burnt_challenge_of_a_locked_account_answers_the_accounts_429()
    {
        var user = await EnrolAsync();
        var challenge = await ChallengeAsync(app, user.Name);
        for (var i = 0; i < 3; i++) await Post(app, "/api/login/2fa", new { challenge, code = "000000" }, null, 401);
        for (var i = 0; i < 2; i++) await Post(app, "/api/login/2fa", new { challenge = await ChallengeAsync(app, user.Name), code = "000000" }, null, 401);
        // Both limits spent: the account's wait is the one worth telling.
        var locked = await Post(app, "/api/login/2fa", new { challenge, code = Code(user.Secret) }, null, 429);
        Assert.True(int.Parse(locked.Context.Response.Headers.RetryAfter.ToString()) > 0);
    }

    [Fact]
    public async Task Each_challenge_counts_its_own_failures_and_survives_two()
    {
        var user = await EnrolAsync();
        var first = await ChallengeAsync(app, user.Name);
        var second = await ChallengeAsync(app, user.Name);
        for (var i = 0; i < 2; i++) await Post(app, "/api/login/2fa", new { challenge = first, code = "000000" }, null, 401);
        for (var i = 0; i < 2; i++) await Post(app, "/api/login/2fa", new { challenge = second, code = "000000" }, null, 401);
        await Post(app, "/api/login/2fa", new { challenge = second, code = Code(user.Secret) }, null, 200);
    }

    [Fact]
    public async Task Setting_up_again_with_the_right_password_does_not_use_up_the_sign_in_budget()
    {
        // The setup's password check shares the sign-in throttle; a right password gives its attempt back.
        await using var node = await services.StartAppAsync(settings: [new("Login:MaxFailuresPerAddress", "3")],
            services: s => s.AddSingleton<TimeProvider>(clock));
        var name = Api.UniqueName("su");
        await node.RegisterAsync(name);
        var token = await node.LoginAsync(name);
        // An address of its own: the class's other tests count failures against 192.0.2.77.
        for (var i = 0; i < 5; i++)
            await node.Scenario(s =>
            {
                s.Post.Json(new { password = Api.Password }).ToUrl("/api/2fa/setup");
                s.WithBearerToken(token);
                s.From("198.51.100.23");
                s.StatusCodeShouldBe(200);
            });
    }

    [Fact]
    public async Task The_account_limit_comes_from_the_TwoFactor_settings()
    {
        await using var strict = await services.StartAppAsync(settings: [new("TwoFactor:MaxFailuresPerAccount", "2")],
            services: s => s.AddSingleton<TimeProvider>(clock));
        var user = await EnrolAsync();
        for (var i = 0; i < 2; i++)
            await Post(strict, "/api/login/2fa", new { challenge = await ChallengeAsync(strict, user.Name), code = "000000" }, null, 401);
        await Post(strict, "/api/login/2fa", new { challenge = await ChallengeAsync(strict, user.Name), code = Code(user.Secret) }, null, 429);
    }

    [Fact]
    public async Task Five_wrong_codes_lock_the_account_and_a_correct_code_is_then_refused_with_429()
    {
        var user = await EnrolAsync();
        for (var i = 0; i < 5; i++)
            await Post(app, "/api/login/2fa", new { challenge = await ChallengeAsync(app, user.Name), code = "000000" }, null, 401);
        var locked = await Post(app, "/api/login/2fa", new { challenge = await ChallengeAsync(app, user.Name), code = Code(user.Secret) }, null, 429);
        var problem = await locked.ProblemAsync(429);
        Assert.Equal(("Too many wrong codes", "Wait before trying again."), (problem["title"]!.GetValue<string>(), problem["detail"]!.GetValue<string>()));
        Assert.True(int.Parse(locked.Context.Response.Headers.RetryAfter.ToString()) > 0);
        // The settings calls share the account's count, and say so the same way.
        var settings = await (await Post(app, "/api/2fa/recovery-codes", new { password = Api.Password, code = Code(user.Secret) }, user.Token, 429)).ProblemAsync(429);
        Assert.Equal(("Too many wrong codes", "Wait before trying again."), (settings["title"]!.GetValue<string>(), settings["detail"]!.GetValue<string>()));
    }

    [Fact]
    public async Task Disabling_needs_the_password_and_a_code_and_revokes_other_sessions()
    {
        var user = await EnrolAsync();
        var other = (await (await Post(app, "/api/login/2fa", new { challenge = await ChallengeAsync(app, user.Name), code = Code(user.Secret) }, null, 200)).JsonAsync())["token"]!.GetValue<string>();
        clock.Advance(TimeSpan.FromSeconds(30));
        await Post(app, "/api/2fa/disable", new { password = "wrong password!!", code = Code(user.Secret) }, user.Token, 401);
        await Post(app, "/api/2fa/disable", new { password = Api.Password, code = "123456" }, user.Token, 401);
        await Post(app, "/api/2fa/disable", new { password = Api.Password }, user.Token, 400);
        await Post(app, "/api/2fa/disable", new { password = Api.Password, code = Code(user.Secret) }, user.Token, 204);
        await app.Scenario(s => { s.Get.Url("/api/me"); s.WithBearerToken(other); s.StatusCodeShouldBe(401); });
        var me = await (await app.Scenario(s => { s.Get.Url("/api/me"); s.WithBearerToken(user.Token); })).JsonAsync();
        Assert.False(me["twoFactorEnabled"]!.GetValue<bool>());
        await app.LoginAsync(user.Name);   // the password alone again
        await Post(app, "/api/2fa/disable", new { password = Api.Password, code = "123456" }, user.Token, 400);
    }

    [Fact]
    public async Task A_successful_sign_in_clears_the_failure_count()
    {
        var user = await EnrolAsync();
        for (var i = 0; i < 4; i++)
            await Post(app, "/api/login/2fa", new { challenge = await ChallengeAsync(app, user.Name), code = "000000" }, null, 401);
        await Post(app, "/api/login/2fa", new { challenge = await ChallengeAsync(app, user.Name), code = Code(user.Secret) }, null, 200);
        clock.Advance(TimeSpan.FromSeconds(30));
        // Without the reset this would be the fifth failure in the window and lock the account.
        await Post(app, "/api/login/2fa", new { challenge = await ChallengeAsync(app, user.Name), code = "000000" }, null, 401);
        await Post(app, "/api/login/2fa", new { challenge = await ChallengeAsync(app, user.Name), code = Code(user.Secret) }, null, 200);
    }

    [Fact]
    public async Task Disabling_takes_a_recovery_code_but_never_works_without_the_password()
    {
        var user = await EnrolAsync();
        await Post(app, "/api/2fa/disable", new { code = user.RecoveryCodes[0] }, user.Token, 400);
        await Post(app, "/api/2fa/disable", new { password = "", code = user.RecoveryCodes[0] }, user.Token, 400);
        await Post(app, "/api/2fa/disable", new { password = Api.Password, code = user.RecoveryCodes[0] }, user.Token, 204);
    }

    [Fact]
    public async Task Each_settings_call_says_what_is_wrong_and_the_history_records_what_was_done()
    {
        async Task Refused(string url, object body, string token, int status, string message) =>
            Assert.Contains(message, await (await Post(app, url, body, token, status)).ReadAsTextAsync());
        var name = Api.UniqueName("tw");
        await app.RegisterAsync(name);
        var token = await app.LoginAsync(name);
        await Refused("/api/2fa/enable", new { code = Code(new byte[20]) }, token, 400, "Start with the setup step.");
        await Refused("/api/2fa/disable", new { password = Api.Password, code = "123456" }, token, 400, "Two-factor authentication is not on.");
        var secret = Base32Encoding.ToBytes((await (await Post(app, "/api/2fa/setup", new { password = Api.Password }, token, 200)).JsonAsync())["secret"]!.GetValue<string>());
        // A pending authenticator is not on: its code makes no recovery codes.
        await Refused("/api/2fa/recovery-codes", new { password = Api.Password, code = Code(secret) }, token, 400, "Two-factor authentication is not on.");
        await Refused("/api/2fa/enable", new { }, token, 400, "Code is required.");
        await Post(app, "/api/2fa/enable", new { code = Code(secret) }, token, 200);
        clock.Advance(TimeSpan.FromSeconds(30));
        await Refused("/api/2fa/enable", new { code = Code(secret) }, token, 400, "Two-factor authentication is already on.");
        await Refused("/api/2fa/setup", new { password = Api.Password }, token, 409, "Turn it off first to enrol a new authenticator.");
        await Refused("/api/2fa/disable", new { password = Api.Password }, token, 400, "Code is required.");
        await Refused("/api/2fa/disable", new { password = Api.Password, code = "12345" }, token, 400, "Code must be 6 digits or a recovery code.");
        // The API takes a code as sent: spaces make it malformed (only the forms trim pasted codes).
        await Refused("/api/2fa/disable", new { password = Api.Password, code = $" {Code(secret)} " }, token, 400, "Code must be 6 digits or a recovery code.");
        await Refused("/api/2fa/recovery-codes", new { password = Api.Password, code = $" {Code(secret)} " }, token, 400, "Code must be 6 digits.");

        await Post(app, "/api/2fa/recovery-codes", new { password = Api.Password, code = Code(secret) }, token, 200);
        Assert.Equal("2fa.recovery-codes-regenerated", (await app.SecurityEventsAsync(token, "?limit=1"))[0]!["kind"].Str());
        clock.Advance(TimeSpan.FromSeconds(30));
        var fresh = (await (await Post(app, "/api/2fa/recovery-codes", new { password = Api.Password, code = Code(secret) }, token, 200)).JsonAsync())["recoveryCodes"]!.AsArray();
        await Post(app, "/api/2fa/disable", new { password = Api.Password, code = fresh[0]!.GetValue<string>() }, token, 204);
        Assert.Equal(["2fa.disabled", "2fa.recovery-code-used"], (await app.SecurityEventsAsync(token, "?limit=2")).Select(e => e!["kind"].Str()));

        // Disabling with an authenticator code records no recovery code.
        secret = Base32Encoding.ToBytes((await (await Post(app, "/api/2fa/setup", new { password = Api.Password }, token, 200)).JsonAsync())["secret"]!.GetValue<string>());
        clock.Advance(TimeSpan.FromSeconds(30));
        await Post(app, "/api/2fa/enable", new { code = Code(secret) }, token, 200);
        clock.Advance(TimeSpan.FromSeconds(30));
        await Post(app, "/api/2fa/disable", new { password = Api.Password, code = Code(secret) }, token, 204);
        Assert.Equal(["2fa.disabled", "2fa.enabled"], (await app.SecurityEventsAsync(token, "?limit=2")).Select(e => e!["kind"].Str()));
    }

    [Fact]
    public async Task New_recovery_codes_clear_the_accounts_wrong_code_count()
    {
        var user = await EnrolAsync();
        for (var i = 0; i < 4; i++)
            await Post(app, "/api/2fa/recovery-codes", new { password = Api.Password, code = "000000" }, user.Token, 401);
        await Post(app, "/api/2fa/recovery-codes", new { password = Api.Password, code = Code(user.Secret) }, user.Token, 200);
        // Without the reset this would be the sixth attempt in the window: 429.
        await Post(app, "/api/2fa/recovery-codes", new { password = Api.Password, code = "000000" }, user.Token, 401);
    }

    [Fact]
    public async Task Enabling_revokes_the_users_other_sessions()
    {
        var (name, token, secret, _) = await SetUpAsync();
        var other = await app.LoginAsync(name);
        await Post(app, "/api/2fa/enable", new { code = Code(secret) }, token, 200);
        await app.Scenario(s => { s.Get.Url("/api/me"); s.WithBearerToken(other); s.StatusCodeShouldBe(401); });
        await app.Scenario(s => { s.Get.Url("/api/me"); s.WithBearerToken(token); s.StatusCodeShouldBe(200); });
    }

    [Fact]
    public async Task Regenerating_recovery_codes_needs_a_code_and_the_password_and_kills_the_old_ones()
    {
        var user = await EnrolAsync();
        await Post(app, "/api/2fa/recovery-codes", new { password = Api.Password, code = "123456" }, user.Token, 401);
        await Post(app, "/api/2fa/recovery-codes", new { password = "nope nope nope", code = Code(user.Secret) }, user.Token, 401);
        // A recovery code cannot make new ones: the request is malformed, not a wrong code.
        var recovery = await (await Post(app, "/api/2fa/recovery-codes", new { password = Api.Password, code = user.RecoveryCodes[0] }, user.Token, 400)).ProblemAsync(400);
        Assert.Contains("Code must be 6 digits.", recovery.ToJsonString());
        clock.Advance(TimeSpan.FromSeconds(30));
        var fresh = (await (await Post(app, "/api/2fa/recovery-codes", new { password = Api.Password, code = Code(user.Secret) }, user.Token, 200)).JsonAsync())
            ["recoveryCodes"]!.AsArray().Select(c => c!.GetValue<string>()).ToList();
        Assert.Empty(fresh.Intersect(user.RecoveryCodes));
        await Post(app, "/api/login/2fa", new { challenge = await ChallengeAsync(app, user.Name), code = user.RecoveryCodes[0] }, null, 401);
        await Post(app, "/api/login/2fa", new { challenge = await ChallengeAsync(app, user.Name), code = fresh[0] }, null, 200);
    }

    [Fact]
    public async Task A_second_step_without_a_code_says_the_code_is_required()
    {
        var result = await app.Scenario(s =>
        {
            s.Post.Json(new { challenge = "amc_x" }).ToUrl("/api/login/2fa");
            s.StatusCodeShouldBe(400);
        });
        Assert.Contains("Code is required.", await result.ReadAsTextAsync());
    }

    [Theory]
    [InlineData("{\"challenge\":\"amc_x\"}")]
    [InlineData("{\"code\":\"123456\"}")]
    [InlineData("{\"challenge\":\"amc_x\",\"code\":\"12345\"}")]
    [InlineData("{\"challenge\":\"amc_x\",\"code\":123456}")]
    [InlineData("{oops")]
    [InlineData("{\"challenge\":\"amc_x\",\"code\":\"0000-0000-000a\"}")]   // 0, 1, 8 and 9 are not base32
    public async Task Malformed_second_step_requests_are_400(string body)
    {
        var result = await app.Scenario(s =>
        {
            s.Post.Text(body).ToUrl("/api/login/2fa");
            s.WithRequestHeader("Content-Type", "application/json");
            s.StatusCodeShouldBe(400);
        });
        await result.ProblemAsync(400);
    }

    [Fact]
    public async Task An_unknown_challenge_is_401()
    {
        var problem = await (await Post(app, "/api/login/2fa", new { challenge = "amc_doesnotexist", code = "123456" }, null, 401)).ProblemAsync(401);
        Assert.Equal("Invalid or expired challenge", problem["title"]!.GetValue<string>());
        Assert.Equal("Sign in with your password again.", problem["detail"]!.GetValue<string>());
    }

    [Fact]
    public async Task The_guards_fail_closed_when_Redis_is_unreachable()
    {
        await using var redis = await RedisServer.StartAsync();
        await using var node = await NodeAsync(redis.ConnectionString);
        var name = Api.UniqueName("fc");
        await node.RegisterAsync(name);
        var token = await node.LoginAsync(name);
        var secret = Base32Encoding.ToBytes((await (await Post(node, "/api/2fa/setup", new { password = Api.Password }, token, 200)).JsonAsync())["secret"]!.GetValue<string>());
        await Post(node, "/api/2fa/enable", new { code = Code(secret) }, token, 200);
        var challenge = await ChallengeAsync(node, name);
        clock.Advance(TimeSpan.FromSeconds(30));
        await redis.StopAsync();
        var refused = await Post(node, "/api/login/2fa", new { challenge, code = Code(secret) }, null, 503);
        await refused.ProblemAsync(503);
    }

    [Fact]
    public async Task Setup_needs_the_password_and_a_wrong_one_counts_as_a_failed_login()
    {
        var name = Api.UniqueName("tfpw");
        await app.RegisterAsync(name);
        var token = await app.LoginAsync(name);
        await (await Post(app, "/api/2fa/setup", new { }, token, 400)).ProblemAsync(400);
        for (var i = 0; i < 5; i++)
            await (await Post(app, "/api/2fa/setup", new { password = "stolen session only" }, token, 401)).ProblemAsync(401);
        // Those were failed logins: the account's password budget is spent for strangers.
        await app.Scenario(s =>
        {
            s.Post.Json(new { username = name, password = Api.Password }).ToUrl("/api/login");
            s.From("192.0.2.178");
            s.StatusCodeShouldBe(429);
        });
        var locked = await (await Post(app, "/api/2fa/setup", new { password = Api.Password }, token, 429)).ProblemAsync(429);
        Assert.Equal("Too many failed sign-ins", locked["title"]!.GetValue<string>());   // passwords, not codes, were wrong
    }

    [Fact]
    public async Task Thirty_parallel_wrong_codes_on_one_challenge_get_at_most_three_checked()
    {
        var user = await EnrolAsync();
        var challenge = await ChallengeAsync(app, user.Name);
        var results = await Task.WhenAll(Enumerable.Range(0, 30).Select(i => app.Scenario(s =>
        {
            s.Post.Json(new { challenge, code = $"{i:D6}" == Code(user.Secret) ? "999999" : $"{i:D6}" }).ToUrl("/api/login/2fa");
            s.IgnoreStatusCode();
        })));
        var titles = new List<string>();
        foreach (var result in results) titles.Add((await result.ProblemAsync(401))["title"]!.GetValue<string>());
        Assert.True(titles.Count(t => t == "Invalid code") <= 3, string.Join(",", titles));
        Assert.Equal(30, titles.Count(t => t is "Invalid code" or "Too many wrong codes for this challenge"));
        var spent = await (await Post(app, "/api/login/2fa", new { challenge, code = Code(user.Secret) }, null, 401)).ProblemAsync(401);
        Assert.Equal("Too many wrong codes for this challenge", spent["title"]!.GetValue<string>());
    }

    [Fact]
    public async Task Thirty_parallel_wrong_codes_on_one_account_get_at_most_five_checked()
    {
        var user = await EnrolAsync();
        var challenges = new List<string>();
        for (var i = 0; i < 10; i++) challenges.Add(await ChallengeAsync(app, user.Name));
        var results = await Task.WhenAll(Enumerable.Range(0, 30).Select(i => app.Scenario(s =>
        {
            s.Post.Json(new { challenge = challenges[i % 10], code = "000000" }).ToUrl("/api/login/2fa");
            s.IgnoreStatusCode();
        })));
        var statuses = results.Select(r => r.Context.Response.StatusCode).ToList();
        Assert.True(statuses.Count(s => s == 401) <= 5, string.Join(",", statuses));
        Assert.Equal(30, statuses.Count(s => s is 401 or 429));
        await Post(app, "/api/login/2fa", new { challenge = await ChallengeAsync(app, user.Name), code = Code(user.Secret) }, null, 429);
    }

    [Theory]
    [InlineData("/api/2fa/disable")]
    [InlineData("/api/2fa/recovery-codes")]
    public async Task Parallel_wrong_codes_with_a_session_get_at_most_five_checked(string url)
    {
        var user = await EnrolAsync();
        var results = await Task.WhenAll(Enumerable.Range(0, 30).Select(i => app.Scenario(s =>
        {
            s.Post.Json(new { password = Api.Password, code = "000000" }).ToUrl(url);
            s.WithBearerToken(user.Token);
            s.IgnoreStatusCode();
        })));
        var statuses = results.Select(r => r.Context.Response.StatusCode).ToList();
        Assert.True(statuses.Count(s => s == 401) <= 5, string.Join(",", statuses));
        Assert.Equal(30, statuses.Count(s => s is 401 or 429));
        await Post(app, url, new { password = Api.Password, code = Code(user.Secret) }, user.Token, 429);
    }
}
