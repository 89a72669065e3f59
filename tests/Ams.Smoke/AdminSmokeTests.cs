using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using Ams.Testing;

namespace Ams.Smoke;

/// <summary>`Ams admin …`, registration by invite, and refusing bad configuration: the AOT binary as an operator runs it.</summary>
public sealed class AdminSmokeTests(AppProcess app) : IClassFixture<AppProcess>
{
    const string Password = SmokeUsers.Password;

    Task<(int ExitCode, string Stdout, string Stderr)> Admin(string stdin, params string[] args) => app.RunCommandAsync(["admin", .. args], stdin);

    async Task<HttpResponseMessage> LoginAsync(string name, string password)
    {
        using var client = app.Client();
        return await client.PostAsJsonAsync("/api/login", new { username = name, password });
    }

    static void AssertNoStackTrace(string output) => Assert.DoesNotMatch(@"(?m)^\s+at |Unhandled exception|Exception:", output);

    [Fact]
    public async Task Disabling_while_Redis_does_not_answer_fails_saying_what_is_done_and_a_repeat_finishes_it()
    {
        // It said "AMS cannot start" with the Redis client's diagnostics and exit 1, the account
        // disabled and its sessions still working.
        var (name, _) = await app.UserAsync("rz");
        await using var redis = await RedisServer.StartAsync();
        var environment = new Dictionary<string, string?> { ["ConnectionStrings__Redis"] = redis.ConnectionString };
        redis.Pause();
        (int ExitCode, string Stdout, string Stderr) paused;
        try
        {
            paused = await app.RunCommandAsync(["admin", "disable", name], environment: environment);
        }
        finally
        {
            redis.Resume();
        }
        Assert.Equal(1, paused.ExitCode);
        Assert.Contains($"Ams admin: '{name}' is disabled, but Redis does not answer, so the sessions and access tokens of '{name}' have not ended yet. " +
                        "Run the command again once Redis answers; repeating it is safe.", paused.Stderr);
        Assert.DoesNotContain("cannot start", paused.Stderr);
        AssertNoStackTrace(paused.Stdout + paused.Stderr);
        var again = await app.RunCommandAsync(["admin", "disable", name], environment: environment);
        Assert.Equal((0, $"disabled '{name}'; every session and access token of it has ended"), (again.ExitCode, again.Stdout.Trim()));
    }

    [Fact]
    public async Task A_logout_on_the_server_right_after_an_admin_command_does_not_wait_for_the_command_that_ended()
    {
        var (_, leaving) = await app.UserAsync("al");
        var (disabledName, _) = await app.UserAsync("ad");
        // The server counts on acknowledgements once it has listened for HearingLimit (500 ms) and a ping.
        await Task.Delay(TimeSpan.FromSeconds(1));
        // A command that joined the revocation channel made the server's next revocations wait
        // 500 ms for its acknowledgement whenever its goodbye went unheard.
        Assert.Equal(0, (await Admin("", "disable", disabledName)).ExitCode);
        var logout = System.Diagnostics.Stopwatch.StartNew();
        Assert.Equal(HttpStatusCode.NoContent, (await leaving.PostAsync("/api/logout", null)).StatusCode);
        Assert.True(logout.Elapsed < TimeSpan.FromMilliseconds(400), $"the logout took {logout.Elapsed}");
    }

    [Fact]
    public async Task An_admin_command_never_joins_the_revocation_channel()
    {
        // It holds no copies of sessions, so no server needs its acknowledgement; one that pinged
        // there was counted on by every server's revocations for the next 2 s, and waited for when its
        // goodbye went unheard. A Redis of its own, to hear everything said on the channel.
        var (name, _) = await app.UserAsync("aj");
        await using var redis = await RedisServer.StartAsync();
        var port = redis.Port.ToString(System.Globalization.CultureInfo.InvariantCulture);
        var heard = new System.Text.StringBuilder();
        using var listener = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo(
            "redis-cli", ["-p", port, "SUBSCRIBE", "ams:sessions-revoked"])
        {
            RedirectStandardOutput = true,
        })!;
        var (subscribed, ended) = (new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously),
            new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
        listener.OutputDataReceived += (_, line) =>
        {
            lock (heard) heard.AppendLine(line.Data);
            if (line.Data == "subscribe") subscribed.TrySetResult();
            if (line.Data == "end-of-test") ended.TrySetResult();
        };
        listener.BeginOutputReadLine();
        try
        {
            await subscribed.Task.WaitAsync(TimeSpan.FromSeconds(10));
            var environment = new Dictionary<string, string?> { ["ConnectionStrings__Redis"] = redis.ConnectionString };
            Assert.Equal(0, (await app.RunCommandAsync(["admin", "disable", name], environment: environment)).ExitCode);
            // Heard once the command has exited: the listener heard all it said.
            using (var publish = System.Diagnostics.Process.Start("redis-cli", ["-p", port, "PUBLISH", "ams:sessions-revoked", "end-of-test"]))
                await publish.WaitForExitAsync();
            await ended.Task.WaitAsync(TimeSpan.FromSeconds(10));
        }
        finally
        {
            listener.Kill();
        }
        string said;
        lock (heard) said = heard.ToString();
        Assert.DoesNotMatch("(?m)^(ping|bye|ack):", said);
    }

    [Fact]
    public async Task Every_admin_command_with_its_exit_code()
    {
        var name = $"ad{Guid.NewGuid():N}"[..20];
        var created = await Admin(Password + "\n", "create-user", name, "--display-name", "Ada Admin");
        Assert.True(created.ExitCode == 0, created.Stderr);
        Assert.Contains(name, created.Stdout);
        var login = await LoginAsync(name, Password);
        Assert.Equal(HttpStatusCode.OK, login.StatusCode);
        var me = (await login.Content.ReadFromJsonAsync<JsonObject>())!;
        Assert.Equal("Ada Admin", me["user"]!["displayName"]!.GetValue<string>());
        var token = me["token"]!.GetValue<string>();

        // Taken, weak password, no password, unknown command: 1 with a message on stderr.
        var taken = await Admin(Password + "\n", "create-user", name);
        Assert.Equal(1, taken.ExitCode);
        Assert.Contains("already registered", taken.Stderr);
        var weak = await Admin("short\n", "create-user", $"w{name}"[..20]);
        Assert.Equal(1, weak.ExitCode);
        Assert.Contains("12–128", weak.Stderr);
        Assert.Equal(1, (await Admin("", "create-user", $"n{name}"[..20])).ExitCode);
        var unknown = await Admin("", "frobnicate");
        Assert.Equal(1, unknown.ExitCode);
        Assert.Contains("usage:", unknown.Stderr);
        Assert.Equal(1, (await Admin("", "disable", "nosuchuser")).ExitCode);
        Assert.Equal(1, (await Admin("", "invite", "--uses", "0")).ExitCode);
        foreach (var result in new[] { taken, weak, unknown }) AssertNoStackTrace(result.Stderr);

        // A personal access token too, to see it end with the sessions.
        using var bearer = app.Client();
        bearer.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        var pat = (await (await bearer.PostAsJsonAsync("/api/tokens", new { name = "bot", password = SmokeUsers.Password })).Content.ReadFromJsonAsync<JsonObject>())!["token"]!.GetValue<string>();
        using var bot = app.Client();
        bot.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", pat);
        Assert.Equal(HttpStatusCode.OK, (await bot.GetAsync("/api/me")).StatusCode);

        // Disable: sessions and tokens end at once; sign-in is the wrong password's 401, body for body.
        Assert.Equal(0, (await Admin("", "disable", name)).ExitCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await bearer.GetAsync("/api/me")).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await bot.GetAsync("/api/me")).StatusCode);
        var disabled = await LoginAsync(name, Password);
        var wrong = await LoginAsync(name, "not the password at all");
        Assert.Equal(HttpStatusCode.Unauthorized, disabled.StatusCode);
        static string WithoutTrace(string body) => System.Text.RegularExpressions.Regex.Replace(body, "\"traceId\":\"[^\"]*\"", "");
        Assert.Equal(WithoutTrace(await wrong.Content.ReadAsStringAsync()), WithoutTrace(await disabled.Content.ReadAsStringAsync()));
        var list = await Admin("", "list-users");
        Assert.Equal(0, list.ExitCode);
        Assert.Matches($@"(?m)^{name}\tAda Admin\t\d{{4}}-\d\d-\d\dT[\d:]+Z\toff\tdisabled$", list.Stdout);

        Assert.Equal(0, (await Admin("", "enable", name)).ExitCode);
        var again = await LoginAsync(name, Password);
        Assert.Equal(HttpStatusCode.OK, again.StatusCode);
        bearer.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer",
            (await again.Content.ReadFromJsonAsync<JsonObject>())!["token"]!.GetValue<string>());
        Assert.Contains($"{name}\tAda Admin", (await Admin("", "list-users")).Stdout);
        // As `just admin` runs it (Development, the dev key file): the key's warning goes to stderr,
        // and stdout is the list alone, for a script to read.
        var devKeyFile = Path.Combine(Path.GetTempPath(), $"ams-dev-key-{Guid.NewGuid():N}");
        try
        {
            // The database's own keys, in the file: a command refuses to run under keys that open none of its data.
            await File.WriteAllTextAsync(devKeyFile, app.MasterKeys + "\n");
            var development = await app.RunCommandAsync(["admin", "list-users"], environment: new Dictionary<string, string?>
            {
                ["ASPNETCORE_ENVIRONMENT"] = "Development", ["Crypto__MasterKeys"] = null, ["Crypto__DevKeyFile"] = devKeyFile,
            });
            Assert.Equal(0, development.ExitCode);
            Assert.Contains("DEVELOPMENT MASTER KEY", development.Stderr);
            Assert.All(development.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries), line => Assert.Equal(5, line.Split('\t').Length));
        }
        finally
        {
            File.Delete(devKeyFile);
        }
        Assert.Matches($@"(?m)^{name}\t.*\tenabled$", (await Admin("", "list-users")).Stdout);

        // Reset: the new password works, the old one and every session do not.
        const string newPassword = "an administrator's new passphrase";
        Assert.Equal(1, (await Admin("short\n", "reset-password", name)).ExitCode);
        var reset = await Admin(newPassword + "\n", "reset-password", name);
        Assert.True(reset.ExitCode == 0, reset.Stderr);
        Assert.Equal(HttpStatusCode.Unauthorized, (await bearer.GetAsync("/api/me")).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await LoginAsync(name, Password)).StatusCode);
        var signedIn = await LoginAsync(name, newPassword);
        Assert.Equal(HttpStatusCode.OK, signedIn.StatusCode);

        // The owner sees what the administrator did, newest first.
        bearer.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer",
            (await signedIn.Content.ReadFromJsonAsync<JsonObject>())!["token"]!.GetValue<string>());
        var history = (await bearer.GetFromJsonAsync<JsonArray>("/api/account/security-events?limit=100"))!
            .Select(e => e!.AsObject()).ToList();
        var byAdmin = history.Where(e => e["userAgent"]!.GetValue<string>() == "Ams admin").ToList();
        Assert.Equal(["password.reset", "account.enabled", "account.disabled"], byAdmin.Select(e => e["kind"]!.GetValue<string>()));
        Assert.All(byAdmin, e => Assert.Equal("", e["address"]!.GetValue<string>()));
    }

    [Fact]
    public async Task Invite_mode_takes_codes_from_admin_invite_once()
    {
        var invite = await Admin("", "invite");
        Assert.Equal(0, invite.ExitCode);
        var code = invite.Stdout.TrimEnd().Split('\n')[^1];
        Assert.StartsWith("ami_", code);
        var twice = (await Admin("", "invite", "--uses", "2")).Stdout.TrimEnd().Split('\n')[^1];

        var invited = await AppProcess.LaunchAsync(app.BinaryPath, [], app.MariaDbConnection, app.RedisConnection, app.MasterKeys,
            new Dictionary<string, string> { ["Registration__Mode"] = "invite" });
        try
        {
        using var client = invited.Client();
        async Task<HttpResponseMessage> RegisterAsync(string? with) =>
            await client.PostAsJsonAsync("/api/register", new { username = $"in{Guid.NewGuid():N}"[..20], password = Password, invite = with });
        var missing = await RegisterAsync(null);
        var unknown = await RegisterAsync("ami_" + new string('A', 43));
        Assert.Equal(HttpStatusCode.Forbidden, missing.StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, unknown.StatusCode);
        Assert.Equal(HttpStatusCode.Created, (await RegisterAsync(code)).StatusCode);
        var used = await RegisterAsync(code);
        Assert.Equal(HttpStatusCode.Forbidden, used.StatusCode);
        var bodies = new[] { missing, unknown, used }.Select(r => r.Content.ReadAsStringAsync().Result)
            .Select(b => System.Text.RegularExpressions.Regex.Replace(b, "\"traceId\":\"[^\"]*\"", "")).Distinct().ToList();
        Assert.Single(bodies);
        Assert.Contains("Invite required", bodies[0]);
        Assert.Equal(HttpStatusCode.Created, (await RegisterAsync(twice)).StatusCode);
        Assert.Equal(HttpStatusCode.Created, (await RegisterAsync(twice)).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await RegisterAsync(twice)).StatusCode);
        Assert.Contains("name=\"invite\"", await client.GetStringAsync("/register"));
        }
        finally
        {
            await invited.DisposeAsync();
        }
    }

    [Fact]
    public async Task A_command_or_rotation_run_with_a_wrong_key_list_is_refused_and_writes_no_key_that_would_stop_the_nodes()
    {
        var id = app.MasterKeys.Split(',')[0].Split(':')[0];
        string Key() => Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32));
        foreach (var (command, keys, message) in new (string[], string, string)[]
                 {
                     (["admin", "list-users"], $"k9:{Key()}", $"which Crypto:MasterKeys does not list"),
                     (["--rotate-keys"], $"k8:{Key()},{id}:{Key()}", $"Crypto:MasterKeys key '{id}' opens none of the"),
                     (["admin", "list-users"], $"{id}:{Key()}", $"Crypto:MasterKeys key '{id}' opens none of the"),
                 })
        {
            var (exitCode, stdout, stderr) = await app.RunCommandAsync(command, environment: new Dictionary<string, string?> { ["Crypto__MasterKeys"] = keys });
            Assert.Equal((string.Join(" ", command), 1), (string.Join(" ", command), exitCode));
            Assert.StartsWith("AMS cannot start:", stderr);
            Assert.Contains(message, stderr);
            AssertNoStackTrace(stdout + stderr);
        }
        // Nothing was wrapped under k9 or k8: with the right keys, commands (which check now) and nodes still start.
        var (ok, listed, refused) = await Admin("", "list-users");
        Assert.True(ok == 0, refused);
        Assert.StartsWith("username\t", listed);
    }

    [Theory]
    [InlineData("Crypto__MasterKeys", null, "Crypto:MasterKeys is not set")]
    [InlineData("Crypto__MasterKeys", "k1:REPLACE_WITH_BASE64_OF_32_RANDOM_BYTES", "Crypto:MasterKeys key 'k1' is not valid base64")]
    [InlineData("Crypto__MasterKeys", "k1:c2hvcnQ=", "must be 32 bytes")]
    [InlineData("ConnectionStrings__MariaDb", null, "ConnectionStrings:MariaDb is not set")]
    [InlineData("ConnectionStrings__Redis", "", "ConnectionStrings:Redis is not set")]
    // The client's own message buried the cause in ~700 characters of its diagnostics.
    [InlineData("ConnectionStrings__Redis", "127.0.0.1:1", "Redis did not take the connection")]
    [InlineData("Registration__Mode", "sometimes", "Registration:Mode must be open, invite or closed")]
    // It listened, then stopped with a stack trace and exit 0 (a timer's period); and a sign-in was a 500.
    [InlineData("Presence__Heartbeat", "-00:00:10", "Presence:Heartbeat must be more than 00:00:00")]
    [InlineData("Sessions__IdleTimeout", "-01:00:00", "Sessions:IdleTimeout must be more than 00:00:00")]
    // Every attachment sweep then failed: now minus the lifetime fell before the calendar's start.
    [InlineData("Attachments__UnsentLifetime", "800000.00:00:00", "Attachments:UnsentLifetime must be more than 00:00:00 and at most 36500.00:00:00")]
    [InlineData("Login__MaxFailuresPerAccount", "-1", "Login:MaxFailuresPerAccount must be 1 or more")]
    public async Task Bad_configuration_is_refused_with_its_message_alone_and_exit_1(string key, string? value, string message)
    {
        var (exitCode, stdout, stderr) = await app.RunCommandAsync([], environment: new Dictionary<string, string?>
        {
            [key] = value,
            ["ASPNETCORE_URLS"] = $"http://127.0.0.1:{FreePort.Next()}",
        });
        Assert.Equal(1, exitCode);
        Assert.Contains(message, stderr);
        Assert.StartsWith("AMS cannot start:", stderr);
        Assert.Single(stderr.TrimEnd().Split('\n'));
        AssertNoStackTrace(stdout + stderr);
        Assert.DoesNotContain("REPLACE_WITH", stderr);   // never echo key material, even a placeholder
        Assert.True(stderr.Length < 300, stderr);         // the message, not a client's diagnostics
    }

    [Fact]
    public async Task A_MariaDB_connection_string_that_cannot_work_is_said_with_its_setting()
    {
        var server = string.Join(";", app.MariaDbConnection.Split(';').Where(part => !part.TrimStart().StartsWith("Database", StringComparison.OrdinalIgnoreCase)));
        foreach (var (connection, message) in new[]
                 {
                     ("Srever=127.0.0.1;Database=ams", "ConnectionStrings:MariaDb: "),
                     ($"{server};Database=nosuchdb", "Check ConnectionStrings__MariaDb (database, user, password)"),
                 })
        {
            var (exitCode, stdout, stderr) = await app.RunCommandAsync([], environment: new Dictionary<string, string?>
            {
                ["ConnectionStrings__MariaDb"] = connection,
                ["ASPNETCORE_URLS"] = $"http://127.0.0.1:{FreePort.Next()}",
            });
            Assert.Equal(1, exitCode);
            Assert.StartsWith("AMS cannot start:", stderr);
            Assert.Contains(message, stderr);
            Assert.Single(stderr.TrimEnd().Split('\n'));
            AssertNoStackTrace(stdout + stderr);
        }
    }

    [Fact]
    public async Task A_port_out_of_range_is_said_with_the_setting_that_names_it()
    {
        var (exitCode, stdout, stderr) = await app.RunCommandAsync([], environment: new Dictionary<string, string?>
        {
            ["ASPNETCORE_URLS"] = "http://127.0.0.1:99999",
        });
        Assert.Equal(1, exitCode);
        Assert.Equal("AMS cannot start: A URL to serve on names a port outside 1–65535 (ASPNETCORE_URLS, ASPNETCORE_HTTP_PORTS).", stderr.TrimEnd());
        AssertNoStackTrace(stdout + stderr);
    }

    [Fact]
    public async Task A_port_in_use_is_said_in_one_line_with_exit_1()
    {
        using var taken = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        taken.Start();
        var port = ((System.Net.IPEndPoint)taken.LocalEndpoint).Port;
        var (exitCode, stdout, stderr) = await app.RunCommandAsync([], environment: new Dictionary<string, string?>
        {
            ["ASPNETCORE_URLS"] = $"http://127.0.0.1:{port}",
        });
        Assert.Equal(1, exitCode);
        Assert.StartsWith("AMS cannot start:", stderr);
        Assert.Contains("address already in use", stderr, StringComparison.OrdinalIgnoreCase);
        // Said once (Kestrel's message wraps the socket's), with the way out.
        Assert.Single(System.Text.RegularExpressions.Regex.Matches(stderr, "already in use", System.Text.RegularExpressions.RegexOptions.IgnoreCase));
        Assert.Contains("ASPNETCORE_URLS", stderr);
        AssertNoStackTrace(stdout + stderr);
    }

    [Fact]
    public async Task A_server_that_fails_to_start_leaves_no_node_for_a_logout_right_after_to_wait_for()
    {
        // Its session store had pinged as it was built, and it exited without a goodbye: for the
        // next 2 s every revocation on the server waited 500 ms for its acknowledgement.
        using var taken = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        taken.Start();
        var failures = new Dictionary<string, Dictionary<string, string?>>
        {
            ["a bad master key"] = new() { ["Crypto__MasterKeys"] = "k1:c2hvcnQ=", ["ASPNETCORE_URLS"] = $"http://127.0.0.1:{FreePort.Next()}" },
            ["a port in use"] = new() { ["ASPNETCORE_URLS"] = $"http://127.0.0.1:{((System.Net.IPEndPoint)taken.LocalEndpoint).Port}" },
        };
        foreach (var (failure, environment) in failures)
        {
            var (_, leaving) = await app.UserAsync("fg");
            await Task.Delay(TimeSpan.FromSeconds(1));   // the server counts on acknowledgements
            var (exitCode, _, stderr) = await app.RunCommandAsync([], environment: environment);
            Assert.True(exitCode == 1, $"{failure}: {stderr}");
            var logout = System.Diagnostics.Stopwatch.StartNew();
            Assert.Equal(HttpStatusCode.NoContent, (await leaving.PostAsync("/api/logout", null)).StatusCode);
            Assert.True(logout.Elapsed < TimeSpan.FromMilliseconds(400), $"after {failure}, the logout took {logout.Elapsed}");
        }
    }

    [Fact]
    public async Task A_MariaDB_account_it_refuses_is_said_at_once_not_retried_for_half_a_minute()
    {
        var wrong = System.Text.RegularExpressions.Regex.Replace(app.MariaDbConnection, "Password=[^;]*", "Password=not-the-password");
        var watch = System.Diagnostics.Stopwatch.StartNew();
        var (exitCode, stdout, stderr) = await app.RunCommandAsync([], environment: new Dictionary<string, string?>
        {
            ["ConnectionStrings__MariaDb"] = wrong,
            ["ASPNETCORE_URLS"] = $"http://127.0.0.1:{FreePort.Next()}",
        });
        Assert.Equal(1, exitCode);
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(10), $"exited after {watch.Elapsed.TotalSeconds:F1} s");
        Assert.StartsWith("AMS cannot start:", stderr);
        Assert.Contains("Access denied", stderr);
        Assert.DoesNotContain("retrying", stdout + stderr);
        Assert.DoesNotContain("not-the-password", stdout + stderr);
        AssertNoStackTrace(stdout + stderr);
    }
}
