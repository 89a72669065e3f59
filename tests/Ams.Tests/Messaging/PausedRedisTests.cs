using System.Text.Json.Nodes;
using System.Diagnostics;
using Ams.Infrastructure;
using Ams.Testing;
using Ams.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Ams.Tests.Messaging;

/// <summary>
/// A Redis that hangs (SIGSTOP: its connections stay open, nothing is answered) must not hold up
/// sends: the Redis calls on the send path share a bound, then fail fast until Redis answers, and
/// the live events that could not go out are published once it does.
/// </summary>
public sealed class PausedRedisTests(Services services) : IClassFixture<Services>
{
    [Fact]
    public async Task Sends_during_a_Redis_pause_answer_at_once_and_reach_live_streams_on_both_nodes_after_it_resumes()
    {
        await using var redis = await RedisServer.StartAsync();
        // The production timeouts (5 s per call): the bound must come from AMS, not from the test's settings.
        var logs = new CapturedLogs();
        await using var node1 = await services.StartAppAsync(redis: redis.ConnectionString, services: s => s.AddSingleton<ILoggerProvider>(logs));
        await using var node2 = await services.StartAppAsync(redis: redis.ConnectionString);
        var alice = await node1.MemberAsync("pra");
        var bob = await node1.MemberAsync("prb");
        var direct = await node1.DirectAsync(alice, bob);
        await using var stream = await SseClient.OpenAsync(node2, bob.Token);
        await node1.SendAsync(alice, direct.Id(), "before the pause");
        Assert.Equal("before the pause", JsonNode.Parse((await stream.NextOfAsync("message")).Data)!["body"].Str());

        var sent = new List<string>();
        TimeSpan elapsed;
        redis.Pause();
        try
        {
            var watch = Stopwatch.StartNew();
            for (var i = 0; i < 6; i++) sent.Add((await node1.SendAsync(alice, direct.Id(), $"paused {i}")).Id());
            elapsed = watch.Elapsed;
        }
        finally
        {
            redis.Resume();
        }
        // Before: three 5 s timeouts in series for each send (session, throttle, publish), 90 s here.
        // Now: one bound of 1 s (RedisCircuit.Budget) for the first, nothing for the rest. The margin
        // is for a loaded machine; a budget of 4 s would not fit in it.
        Assert.True(elapsed < RedisCircuit.Budget + TimeSpan.FromSeconds(2.5), $"six sends during the pause took {elapsed.TotalSeconds:F1} s");

        // Every one reaches Bob's open stream on the other node, in order, once.
        var received = new List<string>();
        string? lastId = null;
        while (received.Count < sent.Count)
        {
            var next = await stream.NextAsync(TimeSpan.FromSeconds(20));
            Assert.True(next is not null, $"got {received.Count} of {sent.Count} after the pause");
            lastId = next!.Id ?? lastId;
            if (next.Event == "message") received.Add(JsonNode.Parse(next.Data)!.Id());
        }
        Assert.Equal(sent, received);
        // The log says so once when they start to wait and once when they are out, not once per send.
        Assert.Single(logs.Lines, line => line.Contains("event not published", StringComparison.Ordinal));
        await Eventually.TrueAsync(() => logs.Lines.Any(line => line.Contains("Published 6 live events that waited for Redis", StringComparison.Ordinal)));
        // And how long Redis did not answer.
        Assert.Contains(logs.Lines, line => System.Text.RegularExpressions.Regex.IsMatch(line, @"Redis at \S+: it answers again; calls go through \(they failed fast for \d+\.\d s\)"));
        // The late and the republished copies of an event are the same event: none is written twice.
        try
        {
            while (await stream.NextAsync(TimeSpan.FromSeconds(2)) is { } extra) Assert.NotEqual("message", extra.Event);
        }
        catch (OperationCanceledException)
        {
            // Quiet for 2 s: nothing more came.
        }

        // And sending works normally again, live (a new stream: the quiet wait above ended that one).
        await using var resumed = await SseClient.OpenAsync(node2, bob.Token, lastId);
        var after = await node1.SendAsync(alice, direct.Id(), "after the pause");
        Assert.Equal(after.Id(), JsonNode.Parse((await resumed.NextOfAsync("message")).Data)!.Id());
    }

    [Fact]
    public async Task Every_call_during_a_Redis_pause_answers_within_the_circuits_budget_and_signing_out_still_works()
    {
        await using var redis = await RedisServer.StartAsync();
        // The production timeouts (5 s per call) again: each call below that went around the
        // circuit waited them out, in series (a sign-in 5 s, the session list 10 s).
        await using var node = await services.StartAppAsync(redis: redis.ConnectionString);
        var alice = await node.MemberAsync("pca");
        var bob = await node.MemberAsync("pcb");
        var direct = (await node.DirectAsync(alice, bob)).Id();
        var sent = (await node.SendAsync(alice, direct, "before the pause")).Id();
        var leaving = await node.LoginAsync(bob.Name);
        var other = await node.LoginAsync(bob.Name);
        var sessions = (await (await node.GetAsync("/api/sessions", bob.Token, 200)).JsonAsync()).AsArray();
        var otherId = sessions.First(s => !(bool)s!["current"]!)!.Id();
        var pat = (await (await node.PostAsync("/api/tokens", new { name = "script", password = Api.Password }, alice.Token, 201)).JsonAsync())["token"].Str();
        var twoFactor = await node.TwoFactorUserAsync("pct");
        var challenge = (await (await node.PostAsync("/api/login", new { username = twoFactor.Name, password = Api.Password }, null, 200)).JsonAsync())["challenge"].Str();
        foreach (var token in new[] { alice.Token, leaving, other, pat }) await node.GetAsync("/api/me", token, 200);

        var steps = new List<(string Name, Func<Task<IScenarioResult>> Call, int Status)>
        {
            // The first to need Redis runs out the budget (1 s) and opens the circuit; the rest fail at once.
            ("inbox", () => node.GetAsync("/api/conversations", alice.Token, null), 200),
            ("sign in", () => node.PostAsync("/api/login", new { username = alice.Name, password = Api.Password }, null, null), 503),
            ("wrong password", () => node.PostAsync("/api/login", new { username = alice.Name, password = "not the password at all" }, null, null), 503),
            ("second factor", () => node.PostAsync("/api/login/2fa", new { challenge, code = "123456" }, null, null), 503),
            ("register", () => node.PostAsync("/api/register", new { username = Api.UniqueName("pcr"), password = Api.Password }, null, null), 503),
            ("session list", () => node.GetAsync("/api/sessions", bob.Token, null), 503),
            ("revoke one", () => node.DeleteAsync($"/api/sessions/{otherId}", bob.Token, null), 503),
            ("revoke others", () => node.PostAsync("/api/sessions/revoke-others", new { }, bob.Token, null), 503),
            ("2fa setup", () => node.PostAsync("/api/2fa/setup", new { password = Api.Password }, alice.Token, null), 503),
            ("password", () => node.PostAsync("/api/account/password", new { currentPassword = Api.Password, newPassword = Api.Password + "!" }, alice.Token, null), 503),
            ("access token", () => node.GetAsync("/api/me", pat, null), 200),
            ("send", () => node.PostAsync("/api/messages", new { conversationId = direct, body = "during the pause" }, alice.Token, null), 201),
            ("typing", () => node.PostAsync($"/api/conversations/{direct}/typing", new { }, alice.Token, null), 204),
            ("mark read", () => node.PostAsync($"/api/conversations/{direct}/read", new { upTo = sent }, bob.Token, null), 204),
            ("react", () => node.Scenario(s => { s.Put.Url($"/api/messages/{sent}/reactions/%F0%9F%91%8D"); s.WithBearerToken(bob.Token); s.IgnoreStatusCode(); }), 204),
            ("find users", () => node.GetAsync("/api/users?prefix=pc", alice.Token, null), 200),
            ("new conversation", () => node.PostAsync("/api/conversations", new { members = new[] { bob.Name }, title = "paused" }, alice.Token, null), 201),
            ("entropy", () => node.GetAsync("/api/entropy", alice.Token, null), 503),
            ("metrics", () => node.Scenario(s => { s.Get.Url("/metrics"); s.From("127.0.0.1"); s.IgnoreStatusCode(); }), 200),
            ("sign out", () => node.PostAsync("/api/logout", new { }, leaving, null), 204),
        };
        var times = new List<string>();
        var total = Stopwatch.StartNew();
        redis.Pause();
        try
        {
            foreach (var (name, call, status) in steps)
            {
                var watch = Stopwatch.StartNew();
                var result = await call().WaitAsync(TimeSpan.FromSeconds(30));
                times.Add($"{name} {watch.Elapsed.TotalSeconds:F2} s");
                Assert.True(status == result.Status(), $"{name}: {result.Status()} {await result.ReadAsTextAsync()}");
                if (status == 503) Assert.NotNull(result.Context.Response.Headers.RetryAfter.ToString());
            }
            total.Stop();
            // Signed out at once, on this node, while Redis hangs.
            await node.GetAsync("/api/me", leaving, 401);
        }
        finally
        {
            redis.Resume();
        }
        Assert.True(total.Elapsed < RedisCircuit.Budget + TimeSpan.FromSeconds(3), $"{steps.Count} calls took {total.Elapsed.TotalSeconds:F1} s: {string.Join(", ", times)}");

        // The sign-out is written once Redis answers; the other session and the sign-in work again.
        await Eventually.TrueAsync(() => node.Services.GetRequiredService<SessionStore>().PendingRevocations == 0, TimeSpan.FromSeconds(10));
        await using (var connection = await StackExchange.Redis.ConnectionMultiplexer.ConnectAsync(redis.ConnectionString))
        {
            var id = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(leaving)));
            Assert.False(await connection.GetDatabase().KeyExistsAsync($"{Ams.Infrastructure.Redis.KeyPrefix}session:{id}"));   // gone for every node
        }
        await node.GetAsync("/api/me", leaving, 401);
        await node.GetAsync("/api/me", other, 200);
        await Eventually.TrueAsync(async () => (await node.PostAsync("/api/login", new { username = alice.Name, password = Api.Password }, null, null)).Status() == 200, TimeSpan.FromSeconds(5));
    }

    [Fact]
    public async Task A_request_that_needs_Redis_just_as_it_resumes_waits_for_the_circuits_next_probe_rather_than_failing()
    {
        await using var redis = await RedisServer.StartAsync();
        await using var node = await services.StartAppAsync(redis: redis.ConnectionString);
        var circuit = node.Services.GetRequiredService<RedisCircuit>();
        redis.Pause();
        Task<bool> waiting;
        try
        {
            await Assert.ThrowsAnyAsync<Exception>(() => circuit.CallAsync("ams:any", db => db.StringGetAsync("ams:any")));
            Assert.True(circuit.IsOpenFor("ams:other"));   // one Redis: every key's master
            // While it still hangs, a request waits one probe interval for its answer, then fails.
            var hung = System.Diagnostics.Stopwatch.StartNew();
            Assert.False(await circuit.ReconnectedWithinAsync("ams:other", TimeSpan.FromSeconds(2)));
            Assert.InRange(hung.Elapsed.TotalMilliseconds, 200, 400);
            // A session another node issued after the resume: this node, its circuit still open,
            // waits for its probe's pending PING to be answered instead of answering 503 at once.
            waiting = circuit.ReconnectedWithinAsync("ams:other", TimeSpan.FromSeconds(2));
            await Task.Delay(100);
            Assert.False(waiting.IsCompleted);
        }
        finally
        {
            redis.Resume();
        }
        Assert.True(await waiting);
        Assert.False(circuit.IsOpen);
    }

    [Fact]
    public async Task Inboxes_conversations_and_new_streams_during_a_Redis_pause_answer_at_once_with_everyone_offline()
    {
        await using var redis = await RedisServer.StartAsync();
        await using var node = await services.StartAppAsync(redis: redis.ConnectionString);
        var alice = await node.MemberAsync("pia");
        var bob = await node.MemberAsync("pib");
        var direct = (await node.DirectAsync(alice, bob)).Id();
        await using var bobsStream = await SseClient.OpenAsync(node, bob.Token);
        bool BobOnline(JsonObject conversation) =>
            conversation["members"]!.AsArray().Single(m => m!["username"].Str() == bob.Name)!["online"]!.GetValue<bool>();
        await Eventually.TrueAsync(async () => BobOnline(await node.ConversationAsync(alice, direct)), TimeSpan.FromSeconds(5));

        TimeSpan elapsed;
        redis.Pause();
        try
        {
            var watch = Stopwatch.StartNew();
            for (var i = 0; i < 3; i++)
            {
                Assert.Contains(await node.InboxAsync(alice), c => c!.Id() == direct);
                Assert.False(BobOnline(await node.ConversationAsync(alice, direct)));   // presence is best effort
                await using var stream = await SseClient.OpenAsync(node, alice.Token);
                Assert.Equal(200, (int)stream.Response.StatusCode);
            }
            elapsed = watch.Elapsed;
        }
        finally
        {
            redis.Resume();
        }
        // Before: each presence read or mark waited out the client's 5 s timeout, nine of them here.
        Assert.True(elapsed < RedisCircuit.Budget + TimeSpan.FromSeconds(2.5), $"three inboxes, conversations and streams during the pause took {elapsed.TotalSeconds:F1} s");
        await Eventually.TrueAsync(async () => BobOnline(await node.ConversationAsync(alice, direct)), TimeSpan.FromSeconds(5));
    }
}
