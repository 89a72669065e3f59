using System.Diagnostics;
using Ams.Infrastructure;
using Ams.Tests.Account;
using Ams.Tests.Messaging;
using Ams.Tests.Support;
using Microsoft.Extensions.DependencyInjection;

namespace Ams.Tests.Platform;

/// <summary>A MariaDB that hangs: once one request has run out of time on it, the others do not wait.</summary>
public sealed class MariaDbCircuitTests(Services services) : IClassFixture<Services>
{
    [Fact]
    public async Task Once_a_request_ran_out_of_time_on_a_hung_MariaDB_the_next_ones_answer_503_at_once_until_it_answers()
    {
        // A query on a pooled connection gives up after 3 s here (and 2 s for its KILL QUERY), not the default 30.
        await using var own = await GroupCommitTests.OwnMariaDbAsync(services, "Connect Timeout=3;Default Command Timeout=3;");
        var (mariadb, app, logs, alice, bob, direct) = own;
        var circuit = own.Circuit;

        var leaving = await app.LoginAsync(bob.Name);
        var latest = (await app.HistoryAsync(bob, direct))[^1].Id();
        var pat = (await app.CreateTokenAsync(alice.Token))["token"].Str();
        Assert.Equal(200, (await app.GetAsync("/api/me", pat, null)).Status());   // cached: it works in the pause
        mariadb.Pause();
        TimeSpan first = default, rest = default;
        var step = "";
        async Task<T> Step<T>(string name, Func<Task<T>> request)
        {
            step = name;
            return await request();
        }
        async Task DuringThePauseAsync()
        {
            var watch = Stopwatch.StartNew();
            // A write waits out its own timeout (a read is given up once the hang is known: see the next test).
            await (await Step("mark read", () => app.PostAsync($"/api/conversations/{direct}/read", new { upTo = latest }, bob.Token, null))).ProblemAsync(503);
            first = watch.Elapsed;
            await Eventually.TrueAsync(() => circuit.IsOpen, TimeSpan.FromSeconds(3));   // once its own probe had no answer either
            watch.Restart();
            await (await Step("history", () => app.GetAsync($"/api/conversations/{direct}/messages", bob.Token, null))).ProblemAsync(503);
            await (await Step("send", () => app.PostAsync("/api/messages", new { conversationId = direct, body = "refused" }, alice.Token, null))).ProblemAsync(503);
            await (await Step("login", () => app.PostAsync("/api/login", new { username = alice.Name, password = Api.Password }, null, null))).ProblemAsync(503);
            await using (var stream = await Step("stream", () => SseClient.OpenAsync(app, bob.Token))) Assert.Equal(503, (int)stream.Response.StatusCode);
            var page = await Step("page", () => app.Scenario(s =>
            {
                s.Get.Url("/");
                s.WithRequestHeader("Accept", "text/html");
                s.StatusCodeShouldBe(503);
            }));
            Assert.StartsWith("text/html", page.Context.Response.ContentType);   // a browser gets a page, not JSON
            Assert.Equal("5", page.Context.Response.Headers.RetryAfter.ToString());
            // What needs no MariaDB still answers: signing out, the sign-in page, the version, the API document, liveness.
            Assert.Equal(204, (await Step("logout", () => app.PostAsync("/api/logout", new { }, leaving, null))).Status());
            // A personal access token is revoked in MariaDB: refused, nothing revoked, to be repeated.
            await (await Step("token logout", () => app.PostAsync("/api/logout", new { }, pat, null))).ProblemAsync(503);
            Assert.Equal(200, (await Step("/login", () => app.GetAsync("/login", null, null))).Status());
            Assert.Equal(200, (await Step("version", () => app.GetAsync("/api/version", null, null))).Status());
            Assert.Equal(200, (await Step("openapi", () => app.GetAsync("/openapi.json", null, null))).Status());
            Assert.Equal(200, (await Step("livez", () => app.GetAsync("/LIVEZ", null, null))).Status());
            // A path nothing serves is a 404 still, not the database's 503.
            Assert.Equal(404, (await Step("no such path", () => app.GetAsync("/api/no-such-thing", null, null))).Status());
            Assert.Equal(405, (await Step("wrong method", () => app.Scenario(s => { s.Delete.Url("/api/me"); s.IgnoreStatusCode(); }))).Status());
            // Credentials are checked first: none, or one Redis knows to be ended, is a 401 as ever; a
            // personal access token Redis has not cached cannot be checked, so 503 at once.
            var anonymous = await Step("anonymous", () => app.GetAsync("/api/me", null, null));
            Assert.Equal(401, anonymous.Status());
            Assert.Equal("Bearer", anonymous.Context.Response.Headers.WWWAuthenticate.ToString());
            Assert.Equal(401, (await Step("unknown session", () => app.GetAsync("/api/me", "not-a-session", null))).Status());
            Assert.Equal(401, (await Step("ended session", () => app.GetAsync("/api/me", leaving, null))).Status());
            await (await Step("uncached token", () => app.GetAsync("/api/me", AccessTokenStore.TokenPrefix + new string('x', 43), null))).ProblemAsync(503);
            var health = await Step("healthz", () => app.GetAsync("/healthz", null, null));
            Assert.Equal(503, health.Status());
            Assert.Equal("not answering", (await health.JsonAsync())["mariadb"].Str());
            rest = watch.Elapsed;
        }
        try
        {
            // Every answer here is bounded (3 s timeouts, or none needed): one that hangs fails, naming its step.
            try { await DuringThePauseAsync().WaitAsync(TimeSpan.FromSeconds(60)); }
            catch (TimeoutException) { throw new Xunit.Sdk.XunitException($"no answer in 60 s during the pause, at: {step}"); }
        }
        finally
        {
            mariadb.Resume();
        }
        Assert.True(first >= TimeSpan.FromSeconds(2), $"the first request answered after {first.TotalSeconds:F1} s, before its timeout");
        Assert.True(rest < TimeSpan.FromSeconds(2), $"the requests after it took {rest.TotalSeconds:F1} s");
        await Eventually.TrueAsync(async () => (await app.GetAsync("/api/conversations", alice.Token, null)).Status() == 200, TimeSpan.FromSeconds(5));
        // Whichever noticed first: the request that ran out of time, or the node's watch.
        Assert.Single(logs.Lines, l => l.Contains("MariaDB is not answering (", StringComparison.Ordinal));
        var back = Assert.Single(logs.Lines, l => l.Contains("MariaDB answers again after", StringComparison.Ordinal));
        // The five refused above, and any of the inbox's tries before the probe found MariaDB back.
        Assert.InRange(int.Parse(back.Split(" were refused at once")[0].Split('(')[^1], System.Globalization.CultureInfo.InvariantCulture), 5, 60);
        // The request that ran out of time began an outage of its own (Outages); those refused at once are the circuit's alone.
        Assert.Single(logs.Lines, l => l.Contains("MariaDB is unreachable", StringComparison.Ordinal));
        Assert.Equal(["before"], Chat.Bodies(await app.HistoryAsync(bob, direct)));
        Assert.Equal(401, (await app.GetAsync("/api/me", leaving, null)).Status());
        Assert.Equal(200, (await app.GetAsync("/api/me", pat, null)).Status());
        Assert.Equal(204, (await app.PostAsync("/api/logout", new { }, pat, null)).Status());
        Assert.Equal(401, (await app.GetAsync("/api/me", pat, null)).Status());
    }

    [Fact]
    public async Task A_hang_is_noticed_within_seconds_though_no_request_or_send_batch_waits_on_it()
    {
        // Timeouts no request reaches here: only the node's watch can notice.
        await using var own = await GroupCommitTests.OwnMariaDbAsync(services, "Connect Timeout=60;Default Command Timeout=60;");
        var (mariadb, app, logs, alice, _, _) = own;
        var circuit = own.Circuit;
        mariadb.Pause();
        var watch = Stopwatch.StartNew();
        try
        {
            await Eventually.TrueAsync(() => circuit.IsOpen, TimeSpan.FromSeconds(8));
            // A tick (1 s), its question (1 s), the probe (1 s), with room for a loaded machine.
            Assert.True(watch.Elapsed < TimeSpan.FromSeconds(4), $"noticed after {watch.Elapsed.TotalSeconds:F1} s");
            await (await app.GetAsync("/api/conversations", alice.Token, null)).ProblemAsync(503);
        }
        finally
        {
            mariadb.Resume();
        }
        await Eventually.TrueAsync(() => !circuit.IsOpen, TimeSpan.FromSeconds(5));
        Assert.Single(logs.Lines, l => l.Contains("MariaDB is not answering (it did not answer the node's watch in 1 s", StringComparison.Ordinal));
        Assert.Equal(200, (await app.GetAsync("/api/conversations", alice.Token, null)).Status());
    }

    [Fact]
    public async Task Sends_whose_first_questions_wait_on_a_hung_MariaDB_answer_503_once_the_hang_is_known_and_their_repeats_are_stored_once()
    {
        // Timeouts no request reaches here: without the give-up the sends would wait for the pause.
        await using var own = await GroupCommitTests.OwnMariaDbAsync(services, "Connect Timeout=60;Default Command Timeout=60;");
        var (mariadb, app, logs, alice, bob, direct) = own;
        var keyed = new { conversationId = direct, body = "keyed" };
        var addressed = new { to = alice.Name, body = "by name" };
        mariadb.Pause();
        var watch = Stopwatch.StartNew();
        try
        {
            // A send's first question to MariaDB, on a pooled connection: its Idempotency-Key lookup,
            // or (without a key) who the name it is sent to is, and their direct conversation.
            var answers = await Task.WhenAll(IdempotencyKeyTests.SendWithKeyAsync(app, alice, keyed, "hung-lookup"),
                app.PostAsync("/api/messages", addressed, bob.Token, null)).WaitAsync(TimeSpan.FromSeconds(20));
            foreach (var answer in answers) await answer.ProblemAsync(503);
            // The watch (1 s), its question (1 s), the probe (1 s), with room for a loaded machine.
            Assert.True(watch.Elapsed < TimeSpan.FromSeconds(6), $"answered after {watch.Elapsed.TotalSeconds:F1} s");
        }
        finally
        {
            mariadb.Resume();
        }
        await Eventually.TrueAsync(() => !own.Circuit.IsOpen, TimeSpan.FromSeconds(5));
        await IdempotencyKeyTests.SendWithKeyAsync(app, alice, keyed, "hung-lookup", 201);
        await IdempotencyKeyTests.SendWithKeyAsync(app, alice, keyed, "hung-lookup", 201);
        await app.PostAsync("/api/messages", addressed, bob.Token, 201);
        Assert.Equal(["before", "keyed", "by name"], Chat.Bodies(await app.HistoryAsync(bob, direct)));
    }

    [Fact]
    public async Task Reads_waiting_on_a_hung_MariaDB_answer_503_once_the_hang_is_known_not_after_their_timeouts()
    {
        // Timeouts no request reaches here: without the give-up each read would wait for the pause.
        await using var own = await GroupCommitTests.OwnMariaDbAsync(services, "Connect Timeout=60;Default Command Timeout=60;");
        var (mariadb, app, _, alice, bob, direct) = own;
        // A personal access token not used yet: not in Redis's cache, so authenticating it asks MariaDB.
        var pat = (await (await app.PostAsync("/api/tokens", new { name = "script", password = Api.Password }, alice.Token, 201)).JsonAsync())["token"].Str();
        Task<IScenarioResult> Page(string url) => app.Scenario(s =>
        {
            s.Get.Url(url);
            s.WithRequestHeader("Cookie", $"ams_session={bob.Token}");
            s.WithRequestHeader("Accept", "text/html");
            s.IgnoreStatusCode();
        });
        mariadb.Pause();
        var watch = Stopwatch.StartNew();
        try
        {
            // Sent before the node knows of the hang: each one's query is on the wire, or waits for a connection.
            // The access token's lookup writes its last use too; it gives up with the reads.
            (string Name, Task<IScenarioResult> Answer)[] reads =
            [
                ("inbox", app.GetAsync("/api/conversations", alice.Token, null)),
                ("history", app.GetAsync($"/api/conversations/{direct}/messages", bob.Token, null)),
                ("conversation", app.GetAsync($"/api/conversations/{direct}", bob.Token, null)),
                ("me", app.GetAsync("/api/me", alice.Token, null)),
                ("users", app.GetAsync("/api/users?prefix=sw", alice.Token, null)),
                ("security events", app.GetAsync("/api/account/security-events", alice.Token, null)),
                ("tokens", app.GetAsync("/api/tokens", alice.Token, null)),
                ("access token", app.GetAsync("/api/me", pat, null)),
                ("login", app.PostAsync("/api/login", new { username = alice.Name, password = Api.Password }, null, null)),
                ("chat page", Page($"/c/{direct}")),
                ("older messages", Page($"/c/{direct}/older")),
                ("conversation list", Page("/c/list")),
                ("settings", Page("/settings")),
            ];
            await Task.WhenAll(reads.Select(read => read.Answer)).WaitAsync(TimeSpan.FromSeconds(30));
            foreach (var (name, answer) in reads) Assert.True((await answer).Status() == 503, $"{name}: {(await answer).Status()}");
            // The watch (1 s), its question (1 s), the probe (1 s), with room for a loaded machine.
            Assert.True(watch.Elapsed < TimeSpan.FromSeconds(8), $"answered after {watch.Elapsed.TotalSeconds:F1} s");
            await (await reads[0].Answer).ProblemAsync(503);
            var settings = await reads[^1].Answer;
            Assert.StartsWith("text/html", settings.Context.Response.ContentType);   // a browser gets a page, not JSON
            Assert.Contains(MariaDbCircuitMiddleware.NotAnswering, await settings.ReadAsTextAsync());   // the same page as once the circuit is open
        }
        finally
        {
            mariadb.Resume();
        }
        await Eventually.TrueAsync(() => !own.Circuit.IsOpen, TimeSpan.FromSeconds(5));
        Assert.Equal(["before"], Chat.Bodies(await app.HistoryAsync(bob, direct)));
        Assert.Equal(200, (await app.GetAsync("/api/me", alice.Token, null)).Status());
    }

    [Fact]
    public async Task A_wait_that_MariaDB_answers_a_probe_through_is_no_hang_and_refuses_nothing()
    {
        // A spent pool (one connection, held here) on a MariaDB that answers: the probe, on a
        // connection of its own, is answered; one that waited for the pool would find no hang either way.
        await using var app = await services.StartAppAsync(settings:
            [new("ConnectionStrings:MariaDb", services.MariaDb.ConnectionString(services.Database) + ";Maximum Pool Size=1;Connect Timeout=2;")]);
        var circuit = app.Services.GetRequiredService<MariaDbCircuit>();
        await using var held = await app.Services.GetRequiredService<Ams.Infrastructure.MariaDb>().OpenConnectionAsync();
        Assert.False(await circuit.SuspectAsync("a test's spent pool"));
        Assert.False(circuit.IsOpen);
        // Nor does the health check wait for the pool: a busy node is still a ready one.
        Assert.Equal("ok", (await (await app.GetAsync("/readyz", null, null)).JsonAsync())["mariadb"].Str());
        Assert.Equal(200, (await app.GetAsync("/api/version", null, null)).Status());
    }

    [Fact]
    public void Only_running_out_of_time_counts_as_hung_not_a_refusal_or_an_error_of_the_server()
    {
        var timeout = ErrorOf("SELECT SLEEP(3)", "Default Command Timeout=1;");
        Assert.True(MariaDbCircuit.IsTimeout(timeout));
        Assert.False(MariaDbCircuit.IsTimeout(ErrorOf("SELECT * FROM no_such_table", "")));
        Assert.False(MariaDbCircuit.IsTimeout(new TimeoutException()));

        MySqlConnector.MySqlException ErrorOf(string sql, string settings)
        {
            using var connection = new MySqlConnector.MySqlConnection(services.MariaDb.ConnectionString(services.Database) + ";" + settings);
            connection.Open();
            using var command = new MySqlConnector.MySqlCommand(sql, connection);
            return Assert.Throws<MySqlConnector.MySqlException>(() => command.ExecuteScalar());
        }
    }
}
