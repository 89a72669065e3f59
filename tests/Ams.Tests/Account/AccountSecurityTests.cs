using Ams.Tests.Messaging;
using Ams.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using StackExchange.Redis;

namespace Ams.Tests.Account;

/// <summary>api.md "Account security" and the personal access tokens, each call on two nodes.</summary>
public sealed class AccountSecurityTests(Services services) : IClassFixture<Services>
{
    const string NewPassword = "a brand new passphrase 42";

    [Fact]
    public async Task A_password_change_on_one_node_ends_every_other_session_and_token_on_the_other_at_once()
    {
        var node1 = await services.AppAsync();
        await using var node2 = await services.StartAppAsync();
        var name = Api.UniqueName("pw");
        await node1.RegisterAsync(name);
        var caller = await node1.LoginAsAsync(name, "caller");
        var other = await node2.LoginAsAsync(name, "other");
        var pat = (await node1.CreateTokenAsync(caller))["token"].Str();
        await node2.CallAsync("GET", "/api/me", null, pat, 200);
        await using var stream = await SseClient.OpenAsync(node2, other);

        await node1.CallAsync("POST", "/api/account/password", new { currentPassword = Api.Password, newPassword = NewPassword }, caller, 204);

        await node2.CallAsync("GET", "/api/me", null, other, 401);
        await node2.CallAsync("GET", "/api/me", null, pat, 401);
        await node2.CallAsync("GET", "/api/me", null, caller, 200);
        Assert.Null(await stream.NextAsync(TimeSpan.FromSeconds(5)));
        await node2.CallAsync("POST", "/api/login", new { username = name, password = Api.Password }, null, 401);
        await node2.LoginAsAsync(name, "again", NewPassword);
        Assert.Contains("password.changed", (await node2.SecurityEventsAsync(caller, "?limit=3")).Select(e => e!["kind"].Str()));
        Assert.Single(await node1.SessionsAsync(caller), s => s!["current"]!.GetValue<bool>());
    }

    [Fact]
    public async Task A_new_password_is_held_to_the_register_rules_and_a_wrong_current_one_counts_as_a_failed_login()
    {
        var app = await services.AppAsync();
        var name = Api.UniqueName("pv");
        await app.RegisterAsync(name);
        var token = await app.LoginAsAsync(name, "t");
        foreach (var bad in new[] { "short", "1qaz2wsx3edc", name })
        {
            var result = await app.CallAsync("POST", "/api/account/password", new { currentPassword = Api.Password, newPassword = bad }, token, null);
            Assert.True(result.Status() == 400, $"{bad}: {result.Status()}");
            var problem = await result.ProblemAsync(400);
            Assert.Equal(["newPassword"], Api.ErrorNames(problem));
        }
        for (var i = 0; i < 5; i++)
            await (await app.CallAsync("POST", "/api/account/password", new { currentPassword = "not the password at all", newPassword = NewPassword }, token, 401)).ProblemAsync(401);
        var throttled = await app.CallAsync("POST", "/api/account/password", new { currentPassword = Api.Password, newPassword = NewPassword }, token, 429);
        Assert.True(int.Parse(throttled.Context.Response.Headers.RetryAfter.ToString()) >= 1);
        // The account's login budget is the same one: signing in is throttled too.
        await app.CallAsync("POST", "/api/login", new { username = name, password = Api.Password }, null, 429, ip: "192.0.2.92");
        var kinds = await KindsOnceThrottledAsync(app, token);
        Assert.Equal(5, kinds.Count(k => k == "login.failed"));
        Assert.Contains("login.throttled", kinds);
    }

    [Fact]
    public async Task A_wrong_password_at_two_factor_setup_is_a_failed_login_in_the_history()
    {
        // The setup checks the password against the sign-in budget (README): someone holding the
        // session and guessing shows in the owner's history as a password change's guesses do.
        var app = await services.AppAsync();
        var name = Api.UniqueName("sf");
        await app.RegisterAsync(name);
        var token = await app.LoginAsAsync(name, "t", ip: "192.0.2.93");
        for (var i = 0; i < 5; i++)
            await (await app.CallAsync("POST", "/api/2fa/setup", new { password = "not the password at all" }, token, 401, ip: "192.0.2.93")).ProblemAsync(401);
        await app.CallAsync("POST", "/api/2fa/setup", new { password = Api.Password }, token, 429, ip: "192.0.2.93");
        var kinds = await KindsOnceThrottledAsync(app, token);
        Assert.Equal(5, kinds.Count(k => k == "login.failed"));
        Assert.Equal(1, kinds.Count(k => k == "login.throttled"));
    }

    /// <summary>The account's security history once its throttling is in it (recorded in the background).</summary>
    static async Task<List<string>> KindsOnceThrottledAsync(IAlbaHost app, string token)
    {
        var kinds = new List<string>();
        for (var i = 0; i < 50 && !kinds.Contains("login.throttled"); i++)
        {
            await Task.Delay(50);
            kinds = (await app.SecurityEventsAsync(token)).Select(e => e!["kind"].Str()).ToList();
        }
        return kinds;
    }

    [Fact]
    public async Task A_token_needs_the_password_so_a_stolen_session_alone_cannot_make_one()
    {
        // A token outlives "sign out everywhere" and turning 2FA on: an outside check made one from a
        // stolen session and kept the account after the owner did both.
        var app = await services.AppAsync();
        var name = Api.UniqueName("tp");
        await app.RegisterAsync(name);
        var token = await app.LoginAsAsync(name, "t", ip: "192.0.2.94");
        for (var i = 0; i < 5; i++)
        {
            var problem = await (await app.CallAsync("POST", "/api/tokens", new { name = "stolen", password = "not the password at all" }, token, 401, ip: "192.0.2.94")).ProblemAsync(401);
            Assert.DoesNotContain("amspat_", problem.ToJsonString());
        }
        var throttled = await app.CallAsync("POST", "/api/tokens", new { name = "stolen", password = Api.Password }, token, 429, ip: "192.0.2.94");
        Assert.True(int.Parse(throttled.Context.Response.Headers.RetryAfter.ToString()) >= 1);
        Assert.Empty((await (await app.CallAsync("GET", "/api/tokens", null, token, 200)).JsonAsync()).AsArray());
        var kinds = await KindsOnceThrottledAsync(app, token);
        Assert.Equal(5, kinds.Count(k => k == "login.failed"));
        Assert.DoesNotContain("token.created", kinds);

        // With the password, a token is made.
        var owner = await app.MemberAsync("to");
        Assert.StartsWith("amspat_", (await (await app.CallAsync("POST", "/api/tokens", new { name = "mine", password = Api.Password }, owner.Token, 201)).JsonAsync())["token"].Str());
    }

    [Fact]
    public async Task Sessions_are_listed_newest_first_and_ending_one_on_a_node_closes_its_stream_on_the_other()
    {
        var node1 = await services.AppAsync();
        await using var node2 = await services.StartAppAsync();
        var name = Api.UniqueName("se");
        await node1.RegisterAsync(name);
        var first = await node1.LoginAsAsync(name, "Firefox <b>1</b>", ip: "198.51.100.7");
        await Task.Delay(5);
        var second = await node2.LoginAsAsync(name, "curl/8", ip: "198.51.100.8");

        var list = await node2.SessionsAsync(second);
        Assert.Equal(2, list.Count);
        Assert.Equal(["curl/8", "Firefox <b>1</b>"], list.Select(s => s!["userAgent"].Str()));
        Assert.Equal(["198.51.100.8", "198.51.100.7"], list.Select(s => s!["address"].Str()));
        Assert.Equal([true, false], list.Select(s => s!["current"]!.GetValue<bool>()));
        Assert.True(DateTimeOffset.Parse(list[0]!["createdAt"].Str()) >= DateTimeOffset.Parse(list[1]!["createdAt"].Str()));
        Assert.EndsWith("Z", list[0]!["lastSeenAt"].Str());
        var firstId = list[1]!["id"].Str();
        Assert.DoesNotContain(first, firstId);
        await node1.CallAsync("GET", "/api/me", null, firstId, 401);   // the id is not a token

        await using var stream = await SseClient.OpenAsync(node1, first);
        var stranger = await node1.NewUserTokenAsync("st");
        await (await node1.CallAsync("DELETE", $"/api/sessions/{firstId}", null, stranger, 404)).ProblemAsync(404);
        await node2.CallAsync("DELETE", $"/api/sessions/{firstId}", null, second, 204);
        await node1.CallAsync("GET", "/api/me", null, first, 401);
        Assert.Null(await stream.NextAsync(TimeSpan.FromSeconds(5)));
        await node2.CallAsync("DELETE", $"/api/sessions/{firstId}", null, second, 404);
        Assert.Single(await node1.SessionsAsync(second));
        Assert.Equal("session.revoked", (await node1.SecurityEventsAsync(second, "?limit=1"))[0]!["kind"].Str());
    }

    [Fact]
    public async Task Revoke_others_ends_every_session_but_the_calling_one_on_every_node()
    {
        var node1 = await services.AppAsync();
        await using var node2 = await services.StartAppAsync();
        var name = Api.UniqueName("ro");
        await node1.RegisterAsync(name);
        var keep = await node1.LoginAsAsync(name, "keep");
        var others = new[] { await node1.LoginAsAsync(name, "a"), await node2.LoginAsAsync(name, "b") };
        await using var stream = await SseClient.OpenAsync(node2, others[1]);
        await node2.CallAsync("POST", "/api/sessions/revoke-others", null, keep, 204);
        foreach (var other in others)
        {
            await node1.CallAsync("GET", "/api/me", null, other, 401);
            await node2.CallAsync("GET", "/api/me", null, other, 401);
        }
        Assert.Null(await stream.NextAsync(TimeSpan.FromSeconds(5)));
        await node2.CallAsync("GET", "/api/me", null, keep, 200);
        Assert.Single(await node1.SessionsAsync(keep));
        Assert.Equal("session.revoked", (await node1.SecurityEventsAsync(keep, "?limit=1"))[0]!["kind"].Str());
        // Again with no other session left: nothing ended, so nothing is recorded.
        var recorded = (await node1.SecurityEventsAsync(keep, "?limit=100")).Count;
        await node1.CallAsync("POST", "/api/sessions/revoke-others", null, keep, 204);
        Assert.Equal(recorded, (await node1.SecurityEventsAsync(keep, "?limit=100")).Count);
        await node1.CallAsync("POST", "/api/sessions/revoke-others", null, null, 401);
    }

    [Fact]
    public async Task A_personal_access_token_works_elsewhere_is_refused_on_account_security_and_revocation_stops_it_on_every_node()
    {
        var node1 = await services.AppAsync();
        await using var node2 = await services.StartAppAsync();
        var alice = await node1.MemberAsync("pa");
        var bob = await node1.MemberAsync("pb");
        var created = await node1.CreateTokenAsync(alice.Token, "my <bot>", expiresInDays: 30);
        var pat = created["token"].Str();
        Assert.StartsWith("amspat_", pat);
        Assert.True(pat.Length >= 7 + 43);
        Assert.Equal("my <bot>", created["name"].Str());
        var expires = DateTimeOffset.Parse(created["expiresAt"].Str()) - DateTimeOffset.Parse(created["createdAt"].Str());
        Assert.Equal(TimeSpan.FromDays(30), expires);
        Assert.Null((await node1.CreateTokenAsync(alice.Token, "forever"))["expiresAt"]);

        // Elsewhere it is alice.
        Assert.Equal(alice.Name, (await (await node2.CallAsync("GET", "/api/me", null, pat, 200)).JsonAsync())["username"].Str());
        var direct = await node2.DirectAsync(new Member(alice.Name, pat, alice.Name), bob);
        await node2.SendAsync(new Member(alice.Name, pat, alice.Name), direct.Id(), "from a script");
        // Account security: 403, whatever the call.
        foreach (var (method, url, body) in new (string, string, object?)[]
        {
            ("GET", "/api/sessions", null), ("POST", "/api/sessions/revoke-others", null), ("DELETE", "/api/sessions/abc", null),
            ("GET", "/api/tokens", null), ("POST", "/api/tokens", new { name = "x", password = Api.Password }), ("DELETE", $"/api/tokens/{created["id"].Str()}", null),
            ("GET", "/api/account/security-events", null), ("POST", "/api/account/password", new { currentPassword = Api.Password, newPassword = NewPassword }),
            ("POST", "/api/2fa/setup", new { password = Api.Password }), ("POST", "/api/2fa/disable", new { password = Api.Password, code = "123456" }),
        })
            await (await node2.CallAsync(method, url, body, pat, 403)).ProblemAsync(403);

        var listed = (await (await node1.CallAsync("GET", "/api/tokens", null, alice.Token, 200)).JsonAsync()).AsArray();
        Assert.Equal(["forever", "my <bot>"], listed.Select(t => t!["name"].Str()));
        Assert.NotNull(listed[1]!["lastUsedAt"]);
        Assert.DoesNotContain(pat, listed.ToJsonString());
        Assert.All(listed, t => Assert.Null(t!["token"]));

        await using var stream = await SseClient.OpenAsync(node2, pat);
        await (await node1.CallAsync("DELETE", $"/api/tokens/{created["id"].Str()}", null, bob.Token, 404)).ProblemAsync(404);
        await node1.CallAsync("DELETE", $"/api/tokens/{created["id"].Str()}", null, alice.Token, 204);
        await node2.CallAsync("GET", "/api/me", null, pat, 401);
        await node1.CallAsync("GET", "/api/me", null, pat, 401);
        Assert.Null(await stream.NextAsync(TimeSpan.FromSeconds(5)));
        await node1.CallAsync("DELETE", $"/api/tokens/{created["id"].Str()}", null, alice.Token, 404);
        var kinds = (await node1.SecurityEventsAsync(alice.Token, "?limit=3")).Select(e => e!["kind"].Str());
        Assert.Equal(["token.revoked", "token.created", "token.created"], kinds);

        // A token that signs out is revoked, as api.md's logout says (it answered 204 and went on working).
        var script = (await node1.CreateTokenAsync(alice.Token, "signs out"))["token"].Str();
        await node2.CallAsync("POST", "/api/logout", null, script, 204);
        await node1.CallAsync("GET", "/api/me", null, script, 401);
        await node2.CallAsync("GET", "/api/me", null, script, 401);
        Assert.DoesNotContain("signs out", (await (await node1.CallAsync("GET", "/api/tokens", null, alice.Token, 200)).JsonAsync()).ToJsonString());
        Assert.Equal("token.revoked", (await node1.SecurityEventsAsync(alice.Token, "?limit=1"))[0]!["kind"].Str());
        await node1.CallAsync("GET", "/api/me", null, alice.Token, 200);   // her session is not the token's
    }

    [Fact]
    public async Task An_expired_token_is_refused_then_its_row_is_deleted_and_live_tokens_stay()
    {
        var app = await services.AppAsync();
        var alice = await app.MemberAsync("ex");
        var soon = await app.CreateTokenAsync(alice.Token, "soon", expiresInDays: 1);
        var later = await app.CreateTokenAsync(alice.Token, "later", expiresInDays: 2);
        await app.CreateTokenAsync(alice.Token, "forever");
        await services.SqlAsync($"UPDATE access_tokens SET expires_at = UTC_TIMESTAMP(3) - INTERVAL 1 SECOND WHERE id = {soon["id"].Str()}");
        await services.SqlAsync($"UPDATE access_tokens SET expires_at = UTC_TIMESTAMP(3) + INTERVAL 1 MINUTE WHERE id = {later["id"].Str()}");
        await app.CallAsync("GET", "/api/me", null, soon["token"].Str(), 401);

        Assert.True(await app.Services.GetRequiredService<Ams.Features.AccessTokens.Sweeper>().SweepAsync() >= 1);
        var userId = await services.UserIdAsync(alice.Name);
        Assert.Equal("forever,later", await services.ScalarAsync($"SELECT GROUP_CONCAT(name ORDER BY name) FROM access_tokens WHERE user_id = {userId}"));
        await app.CallAsync("GET", "/api/me", null, soon["token"].Str(), 401);
        await app.CallAsync("GET", "/api/me", null, later["token"].Str(), 200);
        var listed = (await (await app.CallAsync("GET", "/api/tokens", null, alice.Token, 200)).JsonAsync()).AsArray();
        Assert.Equal(["forever", "later"], listed.Select(t => t!["name"].Str()).Order());
    }

    [Fact]
    public async Task An_account_holds_at_most_a_hundred_live_tokens_even_when_they_are_made_at_once()
    {
        var app = await services.AppAsync();
        var alice = await app.MemberAsync("tm");
        var userId = await services.UserIdAsync(alice.Name);
        // 95 live tokens and 5 expired ones, written here: a hundred creations would be a hundred password checks.
        await services.SqlAsync($"""
            INSERT INTO access_tokens (user_id, name, token_hash, created_at, expires_at)
            SELECT {userId}, CONCAT('t', seq), SHA2(CONCAT('{userId}/', seq), 256), UTC_TIMESTAMP(3),
                   IF(seq <= 5, UTC_TIMESTAMP(3) - INTERVAL 1 SECOND, NULL)
            FROM seq_1_to_100
            """);

        // Ten at once from 95: five are made, whichever way they interleave.
        var store = app.Services.GetRequiredService<Ams.Infrastructure.AccessTokenStore>();
        var made = await Task.WhenAll(Enumerable.Range(0, 10).Select(i => Task.Run(() => store.CreateAsync(userId, $"racing {i}", null))));
        Assert.Equal(5, made.Count(m => m is not null));
        Assert.Equal("100", await services.ScalarAsync($"SELECT COUNT(*) FROM access_tokens WHERE user_id = {userId} AND expires_at IS NULL"));

        var refused = await app.CallAsync("POST", "/api/tokens", new { name = "one more", password = Api.Password }, alice.Token, 409);
        var problem = await refused.ProblemAsync(409);
        Assert.Equal("Too many access tokens", problem["title"].Str());
        Assert.Contains("100", problem["detail"].Str());
        Assert.Equal(100, (await (await app.CallAsync("GET", "/api/tokens", null, alice.Token, 200)).JsonAsync()).AsArray().Count);

        // One revoked, or one expired, makes room for one.
        var first = made.First(m => m is not null)!.Value;
        await app.CallAsync("DELETE", $"/api/tokens/{first.Row.Id}", null, alice.Token, 204);
        var replacement = await app.CreateTokenAsync(alice.Token, "replacement");
        await app.CallAsync("GET", "/api/me", null, replacement["token"].Str(), 200);
        await app.CallAsync("POST", "/api/tokens", new { name = "one more", password = Api.Password }, alice.Token, 409);
        await services.SqlAsync($"UPDATE access_tokens SET expires_at = UTC_TIMESTAMP(3) - INTERVAL 1 SECOND WHERE user_id = {userId} AND name = 't6'");
        await app.CreateTokenAsync(alice.Token, "after an expiry");
    }

    [Fact]
    public async Task Each_account_keeps_the_newest_hundred_security_events_the_history_can_show_and_the_sweep_deletes_the_rest()
    {
        var app = await services.AppAsync();
        var busy = await app.MemberAsync("hb");
        var quiet = await app.MemberAsync("hq");
        var (busyId, quietId) = (await services.UserIdAsync(busy.Name), await services.UserIdAsync(quiet.Name));
        // 1,300 older sign-ins (more than one delete), before the ones registering made.
        await services.SqlAsync($"""
            INSERT INTO security_events (user_id, at, kind, address, user_agent)
                SELECT {busyId}, UTC_TIMESTAMP(3) - INTERVAL 1 DAY, 'login', '192.0.2.1', CONCAT('agent ', seq) FROM seq_1_to_1300;
            """);
        await app.CallAsync("GET", "/api/me", null, busy.Token, 200);
        var shown = (await app.SecurityEventsAsync(busy.Token, "?limit=100")).ToJsonString();
        var quietBefore = await services.ScalarAsync($"SELECT COUNT(*) FROM security_events WHERE user_id = {quietId}");

        var sweeper = app.Services.GetRequiredService<Ams.Features.SecurityHistory.Sweeper>();
        Assert.True(await sweeper.SweepAsync() >= 1201);
        Assert.Equal("100", await services.ScalarAsync($"SELECT COUNT(*) FROM security_events WHERE user_id = {busyId}"));
        Assert.Equal(shown, (await app.SecurityEventsAsync(busy.Token, "?limit=100")).ToJsonString());
        Assert.Equal(quietBefore, await services.ScalarAsync($"SELECT COUNT(*) FROM security_events WHERE user_id = {quietId}"));
        Assert.Equal(0, await sweeper.SweepAsync());
    }

    [Fact]
    public async Task Token_requests_are_validated()
    {
        var app = await services.AppAsync();
        var token = await app.NewUserTokenAsync("tv");
        foreach (var (body, field) in new (object, string)[]
        {
            (new { name = "", expiresInDays = 5, password = Api.Password }, "name"), (new { name = "x", expiresInDays = 0, password = Api.Password }, "expiresInDays"),
            (new { name = "x", expiresInDays = 366, password = Api.Password }, "expiresInDays"), (new { name = new string('n', 65), password = Api.Password }, "name"),
            (new { name = "x" }, "password"), (new { name = "x", password = new string('p', 1025) }, "password"),
        })
            Assert.Equal([field], Api.ErrorNames(await (await app.CallAsync("POST", "/api/tokens", body, token, 400)).ProblemAsync(400)));
        await app.CallAsync("POST", "/api/tokens", new { name = "x" }, null, 401);
        await app.CallAsync("GET", "/api/tokens", null, null, 401);
        await app.CallAsync("DELETE", "/api/tokens/1", null, token, 404);
        await app.CallAsync("DELETE", "/api/tokens/not-a-number", null, token, 404);
    }

    [Fact]
    public async Task The_security_history_lists_what_happened_newest_first_and_nothing_for_unknown_usernames()
    {
        var logs = new CapturedLogs();
        var node1 = await services.AppAsync();
        await using var node2 = await services.StartAppAsync(services: s => s.AddSingleton<ILoggerProvider>(logs));
        var name = Api.UniqueName("hi");
        await node1.RegisterAsync(name);
        await node2.CallAsync("POST", "/api/login", new { username = name, password = "wrong password here" }, null, 401, "agent/1", "203.0.113.5");
        var unknown = Api.UniqueName("nobody");
        await node2.CallAsync("POST", "/api/login", new { username = unknown, password = "wrong password here" }, null, 401);
        var token = await node2.LoginAsAsync(name, "agent/2", ip: "203.0.113.6");

        JsonArray events = [];
        for (var i = 0; i < 50 && events.Count < 2; i++) { events = await node1.SecurityEventsAsync(token); await Task.Delay(50); }   // failures are written in the background
        Assert.Equal(["login", "login.failed"], events.Select(e => e!["kind"].Str()));
        Assert.Equal(["203.0.113.6", "203.0.113.5"], events.Select(e => e!["address"].Str()));
        Assert.Equal(["agent/2", "agent/1"], events.Select(e => e!["userAgent"].Str()));
        Assert.EndsWith("Z", events[0]!["at"].Str());
        Assert.Single(await node1.SecurityEventsAsync(token, "?limit=1"));
        foreach (var bad in new[] { "0", "101", "x" })
            Assert.Equal(["limit"], Api.ErrorNames(await (await node1.CallAsync("GET", $"/api/account/security-events?limit={bad}", null, token, 400)).ProblemAsync(400)));
        await node1.CallAsync("GET", "/api/account/security-events", null, null, 401);
        // Nothing for the unknown name: every row belongs to an account.
        Assert.Contains("\n0", await services.SqlAsync("SELECT COUNT(*) FROM security_events e LEFT JOIN users u ON u.id = e.user_id WHERE u.id IS NULL"));
        // One structured log line per event, with its kind and never the password.
        Assert.Contains(logs.Lines, l => l.Contains("Security event login.failed") && l.Contains("203.0.113.5"));
        Assert.DoesNotContain(logs.Lines, l => l.Contains(unknown));
        Assert.DoesNotContain("wrong password here", logs.All);
        Assert.DoesNotContain(token, logs.All);
    }

    [Fact]
    public async Task A_token_sent_in_the_query_is_refused_and_not_logged_even_at_Debug()
    {
        var logs = new CapturedLogs();
        await using var app = await services.StartAppAsync(
            settings: new Dictionary<string, string?> { ["Logging:LogLevel:Default"] = "Debug", ["Logging:LogLevel:Microsoft.AspNetCore"] = "Debug" },
            services: s => s.AddSingleton<ILoggerProvider>(logs));
        var name = Api.UniqueName("qt");
        await app.RegisterAsync(name);
        var token = await app.LoginAsAsync(name, "q");
        var pat = (await app.CreateTokenAsync(token))["token"].Str();
        await app.CallAsync("GET", $"/api/me?access_token={pat}", null, null, 401);
        await app.CallAsync("GET", $"/api/conversations?access_token={token}", null, null, 401);
        Assert.Contains(logs.Lines, l => l.StartsWith("Debug Microsoft.AspNetCore.Routing"));   // Debug is really on
        Assert.Contains(logs.Lines, l => l.Contains("/api/conversations"));
        Assert.DoesNotContain(pat, logs.All);
        Assert.DoesNotContain(token, logs.All);
    }

    [Fact]
    public async Task No_token_or_password_appears_in_responses_logs_or_Redis()
    {
        var logs = new CapturedLogs();
        await using var app = await services.StartAppAsync(services: s => s.AddSingleton<ILoggerProvider>(logs));
        var name = Api.UniqueName("ns");
        await app.RegisterAsync(name);
        var token = await app.LoginAsAsync(name, "n");
        var pat = (await app.CreateTokenAsync(token))["token"].Str();
        await app.CallAsync("GET", "/api/me", null, pat, 200);
        await app.CallAsync("POST", "/api/account/password", new { currentPassword = Api.Password, newPassword = NewPassword }, token, 204);
        var pat2 = (await app.CreateTokenAsync(token, password: NewPassword))["token"].Str();
        await app.CallAsync("GET", "/api/me", null, pat2, 200);
        var responses = string.Concat(
            (await app.SessionsAsync(token)).ToJsonString(),
            (await app.SecurityEventsAsync(token)).ToJsonString(),
            (await (await app.CallAsync("GET", "/api/tokens", null, token, 200)).ReadAsTextAsync()));
        var secrets = new[] { token, pat, pat2, Api.Password, NewPassword, token["ams_".Length..], pat2["amspat_".Length..] };

        await using var redis = await ConnectionMultiplexer.ConnectAsync(services.Redis.ConnectionString);
        var db = redis.GetDatabase();
        var dump = new System.Text.StringBuilder();
        await foreach (var key in redis.GetServer(redis.GetEndPoints()[0]).KeysAsync(pattern: "*"))
        {
            dump.Append(key).Append('\n');
            switch (await db.KeyTypeAsync(key))
            {
                case RedisType.String: dump.Append(await db.StringGetAsync(key)); break;
                case RedisType.Hash: foreach (var e in await db.HashGetAllAsync(key)) dump.Append(e.Name).Append('=').Append(e.Value).Append('\n'); break;
                case RedisType.Set: foreach (var m in await db.SetMembersAsync(key)) dump.Append(m).Append('\n'); break;
            }
        }
        Assert.Contains("session-meta", dump.ToString());
        Assert.Contains("pat:", dump.ToString());
        foreach (var secret in secrets)
        {
            Assert.DoesNotContain(secret, dump.ToString());
            Assert.DoesNotContain(secret, logs.All);
            Assert.DoesNotContain(secret, responses);
        }
        var table = await services.SqlAsync("SELECT * FROM access_tokens; SELECT * FROM security_events;");
        foreach (var secret in secrets) Assert.DoesNotContain(secret, table);
    }
}
