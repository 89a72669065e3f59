using System.Diagnostics;
using System.Text.Json.Nodes;
using Ams.Infrastructure;
using Ams.Testing;
using Ams.Tests.Account;
using Ams.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Ams.Tests.Messaging;

/// <summary>GET /api/events and /events: live delivery across nodes, replay, Redis outages, logout.</summary>
public sealed class EventStreamTests(Services services) : IClassFixture<Services>
{
    static async Task<SseEvent> NextMessageAsync(SseClient stream, string kind = "message", TimeSpan? timeout = null)
    {
        while (true)
        {
            var next = await stream.NextAsync(timeout) ?? throw new Xunit.Sdk.XunitException("the stream ended");
            if (next.Event == kind) return next;
        }
    }

    /// <summary>
    /// A stream that resumes (Last-Event-ID 0), so it replays, opened while every replay slot of the
    /// node is taken (as by a large catch-up): it is answered, then waits its turn while
    /// <paramref name="meanwhile"/> runs; the slots are given back after it.
    /// </summary>
    static async Task<SseClient> ResumeWhileReplaysWaitAsync(IAlbaHost app, string token, Func<Task> meanwhile)
    {
        var slots = app.Services.GetRequiredService<Ams.Features.Events.Stream>().ReplaySlots;
        var held = 0;
        while (slots.Wait(0)) held++;
        Assert.True(held > 0);
        try
        {
            var stream = await SseClient.OpenAsync(app, token, lastEventId: "0");
            await meanwhile();
            return stream;
        }
        finally
        {
            slots.Release(held);
        }
    }

    [Fact]
    public async Task A_message_sent_on_one_node_reaches_a_stream_on_another_and_only_its_members()
    {
        var node1 = await services.AppAsync();
        await using var node2 = await services.StartAppAsync();
        var alice = await node1.MemberAsync("ea");
        var bob = await node1.MemberAsync("eb");
        var carol = await node1.MemberAsync("ec");
        var direct = await node1.DirectAsync(alice, bob);
        await using var bobStream = await SseClient.OpenAsync(node2, bob.Token);
        await using var carolStream = await SseClient.OpenAsync(node2, carol.Token);
        Assert.Equal("text/event-stream", bobStream.Response.Content.Headers.ContentType?.MediaType);

        const string body = "<script>alert('x')</script> & 🦊";
        var sent = await node1.SendAsync(alice, direct.Id(), body);
        var received = await NextMessageAsync(bobStream);
        Assert.False(string.IsNullOrEmpty(received.Id));
        var message = JsonNode.Parse(received.Data)!;
        Assert.Equal(sent.Id(), message.Id());
        Assert.Equal(body, message["body"].Str());
        Assert.Equal(alice.Name, message["sender"]!["username"].Str());
        Assert.Equal(direct.Id(), message["conversationId"].Str());
        Assert.True(await carolStream.QuietForAsync(TimeSpan.FromSeconds(1)));
    }

    [Fact]
    public async Task Nodes_whose_Redis_connection_string_names_a_channel_prefix_deliver_live()
    {
        // The client puts the prefix before every channel it subscribes to; AMS sends its publishes
        // as commands (RedisCircuit.PublishAsync), so it must put the prefix there itself.
        var redis = $"{services.Redis.ConnectionString},channelPrefix={Api.UniqueName("cp")}:";
        await using var node1 = await services.StartAppAsync(redis: redis);
        await using var node2 = await services.StartAppAsync(redis: redis);
        var alice = await node1.MemberAsync("pa");
        var bob = await node1.MemberAsync("pb");
        var direct = await node1.DirectAsync(alice, bob);
        await using var bobStream = await SseClient.OpenAsync(node2, bob.Token);
        var sent = await node1.SendAsync(alice, direct.Id(), "prefixed");
        Assert.Equal(sent.Id(), JsonNode.Parse((await NextMessageAsync(bobStream)).Data)!.Id());
    }

    [Fact]
    public async Task Reconnecting_with_Last_Event_ID_replays_exactly_what_was_missed_then_goes_live()
    {
        var app = await services.AppAsync();
        var alice = await app.MemberAsync("ra");
        var bob = await app.MemberAsync("rb");
        var direct = await app.DirectAsync(alice, bob);
        string lastId;
        await using (var first = await SseClient.OpenAsync(app, bob.Token))
        {
            await app.SendAsync(alice, direct.Id(), "seen live");
            lastId = (await NextMessageAsync(first)).Id!;
        }
        var missed = new List<string>();
        for (var i = 0; i < 3; i++) missed.Add((await app.SendAsync(alice, direct.Id(), $"missed {i}")).Id());
        await app.PostAsync($"/api/conversations/{direct.Id()}/read", new { upTo = missed[2] }, bob.Token, 204);

        await using var second = await SseClient.OpenAsync(app, bob.Token, lastId);
        var replayed = new List<SseEvent>();
        for (var i = 0; i < 4; i++) replayed.Add((await second.NextAsync())!);
        Assert.Equal(missed, replayed.Take(3).Select(e => JsonNode.Parse(e.Data)!.Id()));
        Assert.Equal("read", replayed[3].Event);
        var read = JsonNode.Parse(replayed[3].Data)!;
        Assert.Equal((direct.Id(), bob.Name, missed[2]), (read["conversationId"].Str(), read["username"].Str(), read["upTo"].Str()));
        Assert.Equal(replayed.Select(e => long.Parse(e.Id!)).Order(), replayed.Select(e => long.Parse(e.Id!)));

        var live = await app.SendAsync(alice, direct.Id(), "live again");
        Assert.Equal(live.Id(), JsonNode.Parse((await NextMessageAsync(second)).Data)!.Id());
    }

    [Fact]
    public async Task A_new_stream_starts_live_and_the_chat_page_says_where_to_resume_from()
    {
        var app = await services.AppAsync();
        var alice = await app.MemberAsync("na");
        var bob = await app.MemberAsync("nb");
        var direct = await app.DirectAsync(alice, bob);
        await app.SendAsync(alice, direct.Id(), "old news");
        var page = await (await app.GetAsync("/", bob.Token, 200)).ReadAsTextAsync();
        var after = System.Text.RegularExpressions.Regex.Match(page, "data-after=\"(\\d+)\"").Groups[1].Value;
        Assert.True(long.Parse(after) >= 1, $"data-after='{after}'");
        var whileLoading = await app.SendAsync(alice, direct.Id(), "sent while the page loaded");

        // Without Last-Event-ID or ?after= a stream is live only: no history, however long.
        await using var live = await SseClient.OpenAsync(app, bob.Token);
        // The page's stream picks up exactly after what the page showed.
        await using var resumed = await SseClient.OpenAsync(app, bob.Token, path: $"/api/events?after={after}");
        Assert.Equal(whileLoading.Id(), JsonNode.Parse((await NextMessageAsync(resumed)).Data)!.Id());

        var fresh = await app.SendAsync(alice, direct.Id(), "live");
        Assert.Equal(fresh.Id(), JsonNode.Parse((await NextMessageAsync(live)).Data)!.Id());
        Assert.Equal(fresh.Id(), JsonNode.Parse((await NextMessageAsync(resumed)).Data)!.Id());
    }

    [Fact]
    public async Task A_read_receipt_reaches_the_other_members()
    {
        var app = await services.AppAsync();
        var alice = await app.MemberAsync("ra");
        var bob = await app.MemberAsync("rb");
        var direct = await app.DirectAsync(alice, bob);
        var sent = await app.SendAsync(alice, direct.Id(), "did you read this?");
        await using var aliceStream = await SseClient.OpenAsync(app, alice.Token);
        await app.PostAsync($"/api/conversations/{direct.Id()}/read", new { upTo = sent.Id() }, bob.Token, 204);
        var receipt = JsonNode.Parse((await NextMessageAsync(aliceStream, "read")).Data)!;
        Assert.Equal(bob.Name, receipt["username"].Str());
        Assert.Equal(sent.Id(), receipt["upTo"].Str());
    }

    [Fact]
    public async Task A_send_while_Redis_is_down_succeeds_and_is_delivered_when_Redis_returns_and_replay_survives_the_restart()
    {
        await using var own = await OwnRedis.StartAsync(services);
        var (redis, node1, node2) = (own.Redis, own.Node1, own.Node2);
        var alice = await node1.MemberAsync("da");
        var bob = await node1.MemberAsync("db");
        var direct = await node1.DirectAsync(alice, bob);
        await using var stream = await SseClient.OpenAsync(node2, bob.Token);
        await node1.SendAsync(alice, direct.Id(), "before the outage");
        var before = await NextMessageAsync(stream);

        await SaveAsync(redis);   // the sessions outlive the restart, as with a persistent Redis
        await redis.StopAsync();
        var during = await node1.Scenario(s =>
        {
            s.Post.Json(new { conversationId = direct.Id(), body = "while Redis is down" }).ToUrl("/api/messages");
            s.WithBearerToken(alice.Token);
            s.StatusCodeShouldBe(201);
        });
        var duringId = (await during.JsonAsync()).Id();
        await redis.StartAgainAsync();

        var caughtUp = await stream.NextAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(duringId, JsonNode.Parse(caughtUp!.Data)!.Id());

        // A fresh stream after the restart: the replay comes from MariaDB.
        // (StackExchange.Redis restores its two connections one after the other: the interactive one may
        // still be reconnecting when the subscription's catch-up has run, so the stream is opened once /api/me works.)
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while ((await node2.GetAsync("/api/me", bob.Token, null)).Status() != 200 && DateTime.UtcNow < deadline) await Task.Delay(100);
        await using var again = await SseClient.OpenAsync(node2, bob.Token, before.Id);
        Assert.Equal(duringId, JsonNode.Parse((await NextMessageAsync(again)).Data)!.Id());
    }

    [Fact]
    public async Task During_a_rolling_update_what_a_node_of_the_previous_release_publishes_reaches_the_streams()
    {
        var app = await services.AppAsync();
        var bob = await app.MemberAsync("rb");
        await using var stream = await SseClient.OpenAsync(app, bob.Token);
        // The previous release published every live event on one classic channel, ams:events.
        var typing = new Ams.Infrastructure.Messaging.LiveEvent("typing", [await services.UserIdAsync(bob.Name)], [0],
            """{"conversationId":"1","username":"old-node"}""");
        await using var client = await StackExchange.Redis.ConnectionMultiplexer.ConnectAsync(services.Redis.ConnectionString);
        Assert.Equal(1, await client.GetSubscriber().PublishAsync(StackExchange.Redis.RedisChannel.Literal("ams:events"),
            System.Text.Json.JsonSerializer.Serialize(typing, Ams.AppJsonContext.Default.LiveEvent)));
        Assert.Equal("old-node", JsonNode.Parse((await NextMessageAsync(stream, "typing")).Data)!["username"].Str());
    }

    [Fact]
    public async Task Right_after_Redis_returns_a_node_still_reconnecting_waits_for_it_instead_of_refusing_a_session_it_never_saw()
    {
        await using var own = await OwnRedis.StartAsync(services);
        var (redis, node1, node2) = (own.Redis, own.Node1, own.Node2);
        var bob = await node2.MemberAsync("rw");   // signed in through node 2: node 1 has never seen the session
        await SaveAsync(redis);
        await redis.StopAsync();
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while ((await node1.GetAsync("/api/me", bob.Token, null)).Status() != 503) Assert.True(DateTime.UtcNow < deadline, "node 1 never noticed the outage");

        await redis.StartAgainAsync();   // with the saved sessions
        var waited = Stopwatch.StartNew();
        Assert.Equal(200, (await node1.GetAsync("/api/me", bob.Token, null)).Status());
        Assert.True(waited.Elapsed < SessionStore.ReconnectWait + TimeSpan.FromSeconds(1), $"waited {waited.Elapsed}");
    }

    /// <summary>Two nodes on a Redis of their own, which the test stops and starts; 1 s Redis timeouts.</summary>
    sealed class OwnRedis : IAsyncDisposable
    {
        public RedisServer Redis { get; private init; } = null!;
        public Alba.IAlbaHost Node1 { get; private init; } = null!;
        public Alba.IAlbaHost Node2 { get; private init; } = null!;

        public static async Task<OwnRedis> StartAsync(Services services, Dictionary<string, string?>? node2Settings = null)
        {
            var redis = await RedisServer.StartAsync();
            var settings = redis.ConnectionString + ",connectTimeout=1000,syncTimeout=1000,asyncTimeout=1000";
            return new OwnRedis
            {
                Redis = redis,
                Node1 = await services.StartAppAsync(redis: settings),
                Node2 = await services.StartAppAsync(redis: settings, settings: node2Settings),
            };
        }

        public async ValueTask DisposeAsync()
        {
            await Node2.DisposeAsync();
            await Node1.DisposeAsync();
            await Redis.DisposeAsync();
        }
    }

    [Fact]
    public async Task A_subscription_that_went_deaf_without_an_error_is_noticed_and_made_again()
    {
        await using var own = await OwnRedis.StartAsync(services);
        var (redis, node1, node2) = (own.Redis, own.Node1, own.Node2);
        var alice = await node1.MemberAsync("ha");
        var bob = await node1.MemberAsync("hb");
        var direct = await node1.DirectAsync(alice, bob);
        await using var stream = await SseClient.OpenAsync(node2, bob.Token);
        // Redis drops every subscription to channels the user may no longer use, and refuses them
        // when the client reconnects; once allowed again, the client does not subscribe again by itself.
        await using var admin = await StackExchange.Redis.ConnectionMultiplexer.ConnectAsync(redis.ConnectionString + ",allowAdmin=true");
        var server = admin.GetServer(admin.GetEndPoints()[0]);
        await server.ExecuteAsync("ACL", "SETUSER", "default", "resetchannels");
        await Task.Delay(TimeSpan.FromSeconds(2));
        await server.ExecuteAsync("ACL", "SETUSER", "default", "allchannels");

        await node1.SendAsync(alice, direct.Id(), "heard again");
        Assert.Contains("heard again", (await NextMessageAsync(stream)).Data);
    }

    [Fact]
    public async Task A_revocation_channel_that_went_deaf_is_made_again_and_a_logout_it_missed_still_ends_the_stream()
    {
        // Keep-alives check sessions too: kept out of the way, so only the revocation channel and
        // what follows its repair can close a stream here.
        await using var own = await OwnRedis.StartAsync(services, new() { ["Events:KeepAlive"] = "00:10:00" });
        var (redis, node1, node2) = (own.Redis, own.Node1, own.Node2);
        var bob = await node1.MemberAsync("rb");
        var carol = await node1.MemberAsync("rc");
        await using var bobStream = await SseClient.OpenAsync(node2, bob.Token);
        await using var carolStream = await SseClient.OpenAsync(node2, carol.Token);
        var hearing = node2.Services.GetRequiredService<SessionStore>();
        var inTime = SessionStore.SilenceLimit + TimeSpan.FromSeconds(10);
        await Eventually.TrueAsync(() => hearing.HearsRevocations, inTime);

        // Only the revocation channel is refused (its subscription dropped with the connection, and
        // refused at the reconnect), long enough for the event channels to be heard again and their
        // catch-up done; then allowed again, and the client does not subscribe to it by itself.
        await using var admin = await StackExchange.Redis.ConnectionMultiplexer.ConnectAsync(redis.ConnectionString + ",allowAdmin=true");
        var server = admin.GetServer(admin.GetEndPoints()[0]);
        await server.ExecuteAsync("ACL", "SETUSER", "default", "resetchannels", "&ams:events*");
        await Eventually.TrueAsync(() => !hearing.HearsRevocations, inTime);
        await Task.Delay(TimeSpan.FromSeconds(3));
        await server.ExecuteAsync("ACL", "SETUSER", "default", "allchannels");

        // Carol signs out while node 2 cannot hear it: her stream ends once the channel is made again.
        await node1.Scenario(s => { s.Post.Url("/api/logout"); s.WithBearerToken(carol.Token); s.StatusCodeShouldBe(204); });
        Assert.Null(await carolStream.NextAsync(SessionStore.SilenceLimit + TimeSpan.FromSeconds(5)));
        // And node 2 hears announcements again: Bob's logout ends his stream at once.
        await Eventually.TrueAsync(() => hearing.HearsRevocations, inTime);
        await node1.Scenario(s => { s.Post.Url("/api/logout"); s.WithBearerToken(bob.Token); s.StatusCodeShouldBe(204); });
        Assert.Null(await bobStream.NextAsync(TimeSpan.FromSeconds(5)));
    }

    static async Task SaveAsync(RedisServer redis)
    {
        await using var client = await StackExchange.Redis.ConnectionMultiplexer.ConnectAsync(redis.ConnectionString + ",allowAdmin=true");
        await client.GetDatabase().ExecuteAsync("SAVE");
    }

    [Fact]
    public async Task After_Redis_returns_only_streams_behind_replay_from_MariaDB_and_every_stream_has_its_session_checked()
    {
        await using var redis = await RedisServer.StartAsync();
        var settings = redis.ConnectionString + ",connectTimeout=1000,syncTimeout=1000,asyncTimeout=1000";
        await using var node1 = await services.StartAppAsync(redis: settings);
        var logs = new CapturedLogs();
        // Keep-alives check sessions too: kept out of the way, so only the catch-up can close a stream here.
        await using var node2 = await services.StartAppAsync(redis: settings,
            settings: new Dictionary<string, string?>
            {
                ["Events:KeepAlive"] = "00:10:00",
                ["Logging:LogLevel:Ams.Infrastructure.Messaging.EventHub"] = "Information",
            },
            services: s => s.AddSingleton<ILoggerProvider>(logs));
        var alice = await node1.MemberAsync("qa");
        var bob = await node1.MemberAsync("qb");
        var carol = await node1.MemberAsync("qc");
        var dave = await node1.MemberAsync("qd");
        var toBob = await node1.DirectAsync(alice, bob);
        var toCarol = await node1.DirectAsync(alice, carol);
        await using var bobStream = await SseClient.OpenAsync(node2, bob.Token);
        await using var carolStream = await SseClient.OpenAsync(node2, carol.Token);
        await using var daveStream = await SseClient.OpenAsync(node2, dave.Token);
        await node1.SendAsync(alice, toCarol.Id(), "carol has everything");
        Assert.Contains("carol has everything", (await NextMessageAsync(carolStream)).Data);

        // Dave's session ends without an announcement node 2 could hear, as if revoked while node 2
        // was cut off from Redis; then Redis restarts (with what it saved) while alice writes to bob.
        var daveSession = (await (await node1.GetAsync("/api/sessions", dave.Token, 200)).JsonAsync()).AsArray()[0]!["id"].Str();
        await using (var admin = await StackExchange.Redis.ConnectionMultiplexer.ConnectAsync(redis.ConnectionString + ",allowAdmin=true"))
            Assert.True(await admin.GetDatabase().KeyDeleteAsync($"{Redis.KeyPrefix}session:{daveSession}"));
        await SaveAsync(redis);
        await redis.StopAsync();
        await node1.PostAsync("/api/messages", new { conversationId = toBob.Id(), body = "while Redis was away" }, alice.Token, 201);
        await redis.StartAgainAsync();

        Assert.Contains("while Redis was away", (await NextMessageAsync(bobStream, timeout: TimeSpan.FromSeconds(30))).Data);
        Assert.Null(await daveStream.NextAsync(TimeSpan.FromSeconds(15)));   // closed by the catch-up's session check
        var catchUp = await WaitForLogAsync(logs, " of 3 streams replay what Redis may not have carried");
        // Bob's stream may have had the message already (node 1 publishes it once Redis takes it); carol's and
        // dave's had everything, so they do not replay (before: every stream replayed, "3 of 3").
        var behind = int.Parse(System.Text.RegularExpressions.Regex.Match(catchUp, @"(\d+) of 3 streams").Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
        Assert.True(behind <= 1, catchUp);
        await node1.SendAsync(alice, toCarol.Id(), "carol still live");
        Assert.Contains("carol still live", (await NextMessageAsync(carolStream)).Data);
    }

    [Fact]
    public async Task A_client_that_stops_reading_is_disconnected_when_its_queue_overflows_and_the_log_says_so()
    {
        var logs = new CapturedLogs();
        await using var app = await services.StartAppAsync(settings: new Dictionary<string, string?> { ["Events:QueueCapacity"] = "8" },
            services: s => s.AddSingleton<ILoggerProvider>(logs));
        var (alice, bob) = (await app.MemberAsync("oa"), await app.MemberAsync("ob"));
        var direct = await app.DirectAsync(alice, bob);
        await using var stream = await SseClient.OpenAsync(app, bob.Token);
        // Bob reads nothing: the connection's buffer (64 KiB in the test server) fills, then his queue.
        var body = new string('x', 3900);
        for (var i = 0; i < 40 && !logs.Lines.Any(l => l.Contains("events behind", StringComparison.Ordinal)); i++)
            await app.SendAsync(alice, direct.Id(), body);
        // Before, the abort that an overflow makes cancelled the stream before it could say why.
        await Eventually.TrueAsync(() => logs.Lines.Any(l => l.Contains("fell 8 events behind and was closed", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task A_stream_waiting_its_turn_to_replay_keeps_its_queue_from_overflowing_and_loses_nothing()
    {
        // A queue of 8 events, and every replay slot of the node taken, as by a large catch-up.
        await using var app = await services.StartAppAsync(settings: new Dictionary<string, string?> { ["Events:QueueCapacity"] = "8" });
        var (alice, bob) = (await app.MemberAsync("a"), await app.MemberAsync("b"));
        var direct = await app.DirectAsync(alice, bob);
        // Bob's stream waits for a slot while 30 messages (more than its queue holds) come live.
        await using (var stream = await ResumeWhileReplaysWaitAsync(app, bob.Token, async () =>
        {
            for (var i = 0; i < 30; i++) await app.SendAsync(alice, direct.Id(), $"while waiting {i}");
            await Task.Delay(500);
        }))
        {
            // Every message once and in order, on the same connection: it was not closed as overflowing.
            var bodies = new List<string>();
            while (bodies.Count < 30) bodies.Add(JsonNode.Parse((await NextMessageAsync(stream)).Data)!["body"].Str());
            Assert.Equal(Enumerable.Range(0, 30).Select(i => $"while waiting {i}"), bodies);
            await app.SendAsync(alice, direct.Id(), "after");
            Assert.Equal("after", JsonNode.Parse((await NextMessageAsync(stream)).Data)!["body"].Str());
        }
    }

    [Fact]
    public async Task A_stream_whose_replay_finds_MariaDB_gone_ends_for_the_client_to_resume_with_one_outage_line_and_no_stack_trace()
    {
        await using var own = await GroupCommitTests.OwnMariaDbAsync(services, "Connect Timeout=2;");
        var (mariadb, app, logs, _, bob, _) = own;
        // MariaDB stops while Bob's stream, already answered, waits to replay.
        await using (var stream = await ResumeWhileReplaysWaitAsync(app, bob.Token, async () =>
        {
            await Task.Delay(300);
            await mariadb.StopAsync();
        }))
        {
            var ended = false;
            try { ended = await stream.NextAsync(TimeSpan.FromSeconds(15)) is null; }
            catch (Exception e) when (e is IOException or HttpRequestException) { ended = true; }
            Assert.True(ended, "the stream went on without MariaDB");
        }
        await Eventually.TrueAsync(() => logs.Lines.Any(l => l.Contains("MariaDB is unreachable", StringComparison.Ordinal)), TimeSpan.FromSeconds(5));
        Assert.DoesNotContain(logs.Lines, l => l.Contains("response has already started", StringComparison.OrdinalIgnoreCase)
            || l.Contains("unhandled exception", StringComparison.OrdinalIgnoreCase));
        await mariadb.StartAgainAsync();
    }

    [Fact]
    public async Task A_catch_up_that_reaches_a_stream_waiting_its_turn_to_replay_still_checks_its_session()
    {
        await using var redis = await RedisServer.StartAsync();
        var logs = new CapturedLogs();
        await using var app = await services.StartAppAsync(redis: redis.ConnectionString + ",connectTimeout=1000,syncTimeout=1000,asyncTimeout=1000",
            settings: new Dictionary<string, string?>
            {
                ["Events:KeepAlive"] = "00:10:00",   // only the catch-up may check the session
                ["Logging:LogLevel:Ams.Infrastructure.Messaging.EventHub"] = "Information",
            },
            services: s => s.AddSingleton<ILoggerProvider>(logs));
        var (alice, dave) = (await app.MemberAsync("wa"), await app.MemberAsync("wd"));
        await app.DirectAsync(alice, dave);
        var daveSession = (await (await app.GetAsync("/api/sessions", dave.Token, 200)).JsonAsync()).AsArray()[0]!["id"].Str();
        // Dave's stream waits for a slot; meanwhile his session ends unannounced and Redis
        // restarts: the catch-up reaches the stream while it waits.
        await using (var stream = await ResumeWhileReplaysWaitAsync(app, dave.Token, async () =>
        {
            await using (var admin = await StackExchange.Redis.ConnectionMultiplexer.ConnectAsync(redis.ConnectionString + ",allowAdmin=true"))
                Assert.True(await admin.GetDatabase().KeyDeleteAsync($"{Redis.KeyPrefix}session:{daveSession}"));
            await SaveAsync(redis);
            await redis.StopAsync();
            await redis.StartAgainAsync();
            await WaitForLogAsync(logs, "streams replay what Redis may not have carried", seconds: 30);
            await Task.Delay(200);
        }))
        {
            // The replay runs, then the session check the catch-up asked for closes the stream.
            var ended = false;
            for (var i = 0; i < 20 && !ended; i++) ended = await stream.NextAsync(TimeSpan.FromSeconds(15)) is null;
            Assert.True(ended);
        }
    }

    [Fact]
    public async Task A_catch_up_reads_the_latest_event_numbers_of_thousands_of_users_a_thousand_at_a_time()
    {
        await services.AppAsync();   // the schema
        var connectionString = services.MariaDb.ConnectionString(services.Database);
        await using var db = new Ams.Infrastructure.MariaDb(connectionString);
        // 2,500 users of the test's own (ids no real user has), three queries' worth; every third one
        // without an event yet, as a user with a stream and no events is.
        var users = Enumerable.Range(1, 2_500).Select(i => 9_000_000_000L + i).ToList();
        await using (var connection = await db.OpenConnectionAsync())
        await using (var insert = new MySqlConnector.MySqlCommand(
            "INSERT INTO user_event_seq (user_id, seq) VALUES " + string.Join(",", users.Where(u => u % 3 != 0).Select(u => $"({u},{u % 1000 + 1})")),
            connection))
            await insert.ExecuteNonQueryAsync();

        var latest = await Ams.Infrastructure.Messaging.EventHub.LatestAsync(db, users);

        Assert.Equal(users.Count(u => u % 3 != 0), latest.Count);
        Assert.All(users.Where(u => u % 3 != 0), u => Assert.Equal(u % 1000 + 1, latest[u]));
        Assert.DoesNotContain(latest.Keys, u => u % 3 == 0);
    }

    [Fact]
    public async Task A_catch_up_of_many_streams_behind_replays_a_few_at_a_time_rather_than_drain_the_connection_pool()
    {
        // Connections in use by the nodes' pool for this test's database, at their peak.
        const string database = "amsreplaybound";
        using var pool = new PoolUsage(database);

        // Node 2 has a Redis of its own, so it never hears what node 1 publishes: its streams fall
        // behind, and a restart of its Redis makes every one of them replay from MariaDB at once.
        await using var redis = await RedisServer.StartAsync();
        await using var node1 = await services.StartAppAsync(database);
        await using var node2 = await services.StartAppAsync(database, redis: redis.ConnectionString + ",connectTimeout=1000,syncTimeout=1000,asyncTimeout=1000",
            settings: new Dictionary<string, string?> { ["Events:MaxStreamsPerUser"] = "1000" });
        var alice = await node1.MemberAsync("ra");
        var bob = await node1.MemberAsync("rb");
        var direct = await node1.DirectAsync(alice, bob);
        var bobOnNode2 = await node2.LoginAsync(bob.Name);
        var streams = await Task.WhenAll(Enumerable.Range(0, 120).Select(_ => SseClient.OpenAsync(node2, bobOnNode2)));
        try
        {
            await node1.SendAsync(alice, direct.Id(), "node 2 did not hear this");
            pool.ResetPeak();
            await SaveAsync(redis);   // bob's session on node 2 survives the restart
            await redis.StopAsync();
            await redis.StartAgainAsync();
            foreach (var stream in streams)
                Assert.Contains("node 2 did not hear this", (await NextMessageAsync(stream, timeout: TimeSpan.FromSeconds(30))).Data);
            // 16 replays at a time (each reads its data keys on its own connection), and a few for
            // anything else. Before: the whole pool, and streams failed for want of a connection.
            Assert.InRange(pool.Peak, 1, 24);
        }
        finally
        {
            foreach (var stream in streams) await stream.DisposeAsync();
        }
    }

    [Fact]
    public async Task A_catch_up_that_cannot_read_the_latest_event_numbers_has_every_stream_replay()
    {
        // MariaDB and node 2's Redis of their own: MariaDB is paused below, and node 2 never hears
        // what node 1 publishes, so its stream gets the message only by replaying.
        await using var mariadb = await MariaDbServer.StartAsync();
        await mariadb.CreateDatabaseAsync("ams");
        await using var redis = await RedisServer.StartAsync();
        var own = new Dictionary<string, string?> { ["ConnectionStrings:MariaDb"] = mariadb.ConnectionString("ams") };
        await using var node1 = await services.StartAppAsync(settings: own);
        var logs = new CapturedLogs();
        await using var node2 = await services.StartAppAsync(redis: redis.ConnectionString + ",connectTimeout=1000,syncTimeout=1000,asyncTimeout=1000",
            settings: new Dictionary<string, string?>(own) { ["Logging:LogLevel:Ams.Infrastructure.Messaging.EventHub"] = "Information" },
            services: s => s.AddSingleton<ILoggerProvider>(logs));
        var alice = await node1.MemberAsync("fa");
        var bob = await node1.MemberAsync("fb");
        var direct = await node1.DirectAsync(alice, bob);
        await using var stream = await SseClient.OpenAsync(node2, await node2.LoginAsync(bob.Name));
        await node1.SendAsync(alice, direct.Id(), "only a replay brings this");

        await SaveAsync(redis);
        mariadb.Pause();
        try
        {
            await redis.StopAsync();
            await redis.StartAgainAsync();
            // Every catch-up of the reconnect (one per restored connection, one once the heartbeats are
            // heard again) must have given up on MariaDB, or a later one would bring the message anyway.
            await WaitForLogAsync(logs, "Could not read the latest event numbers for a catch-up", count: 3, seconds: 30);
        }
        finally
        {
            mariadb.Resume();
        }
        Assert.Contains("only a replay brings this", (await NextMessageAsync(stream, timeout: TimeSpan.FromSeconds(30))).Data);
    }

    /// <summary>The first log line with <paramref name="text"/>, once <paramref name="count"/> have been written.</summary>
    static async Task<string> WaitForLogAsync(CapturedLogs logs, string text, int count = 1, int seconds = 15)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (DateTime.UtcNow < deadline)
        {
            var lines = logs.Lines.Where(l => l.Contains(text, StringComparison.Ordinal)).ToList();
            if (lines.Count >= count) return lines[0];
            await Task.Delay(100);
        }
        throw new Xunit.Sdk.XunitException($"fewer than {count} log lines with '{text}':\n{logs.All}");
    }

    [Fact]
    public async Task A_stream_whose_session_ended_while_its_node_was_cut_off_gets_no_catch_up_replay()
    {
        await using var own = await OwnRedis.StartAsync(services);
        var (redis, node1, node2) = (own.Redis, own.Node1, own.Node2);
        var alice = await node1.MemberAsync("pa");
        var bob = await node1.MemberAsync("pb");
        var direct = await node1.DirectAsync(alice, bob);
        await using var stream = await SseClient.OpenAsync(node2, bob.Token);

        // The partition: Redis comes back without bob's session (it was revoked while node 2 could
        // not hear the announcement; an empty restart is the same for node 2).
        await redis.StopAsync();
        await node1.PostAsync("/api/messages", new { conversationId = direct.Id(), body = "for bob's eyes only" }, alice.Token, 201);
        await redis.StartAgainAsync();

        // Old code: the catch-up replayed the message to the revoked session's stream.
        var next = await stream.NextAsync(TimeSpan.FromSeconds(15));
        Assert.True(next is null, $"the revoked session's stream got {next?.Event}: {next?.Data}");
    }

    [Fact]
    public async Task Logging_out_while_Redis_is_down_clears_the_cookie_and_takes_effect_everywhere_when_Redis_returns()
    {
        await using var own = await OwnRedis.StartAsync(services);
        var (redis, node1, node2) = (own.Redis, own.Node1, own.Node2);
        var bob = await node1.MemberAsync("ob");
        await SaveAsync(redis);
        await redis.StopAsync();
        // Node 2 never saw this session, so it cannot tell: 503, not a 401 that would sign bob out.
        await node2.GetAsync("/api/me", bob.Token, 503);

        // Old code: 503, and the session lived on.
        var logout = await node1.Scenario(s =>
        {
            s.Post.Url("/api/logout");
            s.WithBearerToken(bob.Token);
            s.StatusCodeShouldBe(204);
        });
        Assert.Contains(logout.Context.Response.Headers.SetCookie, c => c!.StartsWith("ams_session=;", StringComparison.Ordinal));
        await node1.GetAsync("/api/me", bob.Token, 401);   // this node refuses it at once

        await redis.StartAgainAsync();   // with bob's session: the revocation still has to be written
        var deadline = DateTime.UtcNow.AddSeconds(15);
        while ((await node2.GetAsync("/api/me", bob.Token, null)).Status() != 401)
        {
            Assert.True(DateTime.UtcNow < deadline, "the revocation never reached Redis");
            await Task.Delay(200);
        }
    }

    [Fact]
    public async Task Logging_out_on_one_node_closes_that_sessions_streams_on_another()
    {
        var node1 = await services.AppAsync();
        await using var node2 = await services.StartAppAsync();
        var bob = await node1.MemberAsync("lb");
        await using var stream = await SseClient.OpenAsync(node2, bob.Token);
        await node1.Scenario(s => { s.Post.Url("/api/logout"); s.WithBearerToken(bob.Token); s.StatusCodeShouldBe(204); });
        Assert.Null(await stream.NextAsync(TimeSpan.FromSeconds(5)));
    }

    [Fact]
    public async Task Keep_alive_comments_flow_on_an_idle_stream()
    {
        await using var app = await services.StartAppAsync(settings: new Dictionary<string, string?> { ["Events:KeepAlive"] = "00:00:00.300" });
        var bob = await app.MemberAsync("kb");
        await using var stream = await SseClient.OpenAsync(app, bob.Token);
        Assert.True(await stream.QuietForAsync(TimeSpan.FromSeconds(1.2)));
        Assert.Contains(": keep-alive", stream.Comments);
    }

    [Fact]
    public async Task The_pages_stream_says_it_is_alive_with_an_event_naming_the_period_as_it_opens_and_every_period_after()
    {
        // The page's script cannot see comments; app.js opens the stream again after 2.5 periods without a word.
        await using var app = await services.StartAppAsync(settings: new Dictionary<string, string?> { ["Events:KeepAlive"] = "00:00:00.300" });
        var bob = await app.MemberAsync("kh");
        await using var stream = await SseClient.OpenAsync(app, bob.Token, path: "/events");
        Assert.True(await stream.QuietForAsync(TimeSpan.FromSeconds(1.2)));
        Assert.True(stream.KeepAlives.Count >= 3, $"{stream.KeepAlives.Count} keep-alive events in 1.2 s");
        Assert.All(stream.KeepAlives, data => Assert.Equal("300", data));
        Assert.Empty(stream.Comments);
        // The API's stream keeps its comments (docs/api.md).
        await using var api = await SseClient.OpenAsync(app, bob.Token);
        Assert.True(await api.QuietForAsync(TimeSpan.FromSeconds(0.7)));
        Assert.Empty(api.KeepAlives);
        Assert.Contains(": connected", api.Comments);
    }

    [Fact]
    public async Task Keep_alives_reach_every_stream_once_a_period_spread_over_it_rather_than_all_at_once()
    {
        // Each keep-alive asks Redis whether the stream's session still exists: 10,000 streams
        // asking at the same instant would be a burst every period.
        await using var app = await services.StartAppAsync(settings: new Dictionary<string, string?> { ["Events:KeepAlive"] = "00:00:01.600", ["Events:MaxStreamsPerUser"] = "32" });
        var bob = await app.MemberAsync("kp");
        var streams = new List<SseClient>();
        for (var i = 0; i < 24; i++) streams.Add(await SseClient.OpenAsync(app, bob.Token));
        try
        {
            var clock = System.Diagnostics.Stopwatch.StartNew();
            var arrivals = await Task.WhenAll(streams.Select(async stream => { await stream.NextKeepAliveAsync(TimeSpan.FromSeconds(10)); return clock.Elapsed; }));
            Assert.All(arrivals, at => Assert.True(at < TimeSpan.FromSeconds(3.5), $"a stream waited {at.TotalSeconds:F1} s for its keep-alive"));
            Assert.True(arrivals.Max() - arrivals.Min() > TimeSpan.FromMilliseconds(400),
                $"every keep-alive came at once: {string.Join(", ", arrivals.Select(a => a.TotalMilliseconds.ToString("F0")))} ms");
        }
        finally
        {
            foreach (var stream in streams) await stream.DisposeAsync();
        }
    }

    [Fact]
    public async Task A_stalled_stream_does_not_delay_anyone_else()
    {
        var app = await services.AppAsync();
        var alice = await app.MemberAsync("sa");
        var slow = await app.MemberAsync("ss");
        var fast = await app.MemberAsync("sf");
        var group = await app.GroupAsync(alice, "stall", slow, fast);
        await using var stalled = await SseClient.OpenAsync(app, slow.Token);   // never read
        await using var reader = await SseClient.OpenAsync(app, fast.Token);
        for (var i = 0; i < 20; i++)
        {
            var sent = await app.SendAsync(alice, group.Id(), $"burst {i}");
            Assert.Equal(sent.Id(), JsonNode.Parse((await NextMessageAsync(reader)).Data)!.Id());
        }
    }

    [Fact]
    public async Task The_browser_stream_sends_html_fragments_with_user_text_encoded()
    {
        var app = await services.AppAsync();
        var alice = await app.MemberAsync("ha", displayName: "<b>Alice</b>");
        var bob = await app.MemberAsync("hb");
        var direct = await app.DirectAsync(alice, bob);
        await using var stream = await SseClient.OpenAsync(app, bob.Token, path: "/events");
        await app.SendAsync(alice, direct.Id(), "<img src=x onerror=alert(1)>");
        var fragment = (await NextMessageAsync(stream)).Data;
        Assert.StartsWith("<li id=\"m-", fragment);
        Assert.DoesNotContain("<img", fragment);
        Assert.DoesNotContain("<b>", fragment);
        Assert.Contains("&lt;img src=x onerror=alert(1)&gt;", fragment);
        Assert.Contains("&lt;b&gt;Alice&lt;/b&gt;", fragment);
        Assert.DoesNotContain("mine", fragment);
    }

    [Fact]
    public async Task Streams_need_authentication()
    {
        var app = await services.AppAsync();
        var result = await app.Scenario(s => { s.Get.Url("/api/events"); s.StatusCodeShouldBe(401); });
        await result.ProblemAsync(401);
    }

    [Fact]
    public async Task One_user_may_hold_only_so_many_streams_per_node()
    {
        await using var app = await services.StartAppAsync(settings: new Dictionary<string, string?> { ["Events:MaxStreamsPerUser"] = "2" });
        var alice = await app.MemberAsync("cap");
        await using var first = await SseClient.OpenAsync(app, alice.Token);
        await using var second = await SseClient.OpenAsync(app, alice.Token);
        Assert.Equal(200, (int)second.Response.StatusCode);
        await using (var third = await SseClient.OpenAsync(app, alice.Token))
        {
            Assert.Equal(429, (int)third.Response.StatusCode);
            Assert.Equal("application/problem+json", third.Response.Content.Headers.ContentType?.MediaType);
            Assert.NotNull(third.Response.Headers.RetryAfter);
        }
        // Another user is not affected, and a closed stream frees its place.
        var bob = await app.MemberAsync("cap");
        await using (var bobs = await SseClient.OpenAsync(app, bob.Token)) Assert.Equal(200, (int)bobs.Response.StatusCode);
        await first.DisposeAsync();
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (true)
        {
            await using var again = await SseClient.OpenAsync(app, alice.Token);
            if ((int)again.Response.StatusCode == 200) break;
            Assert.True(DateTime.UtcNow < deadline, "the closed stream's place was never freed");
            await Task.Delay(100);
        }
    }

    [Fact]
    public async Task A_client_too_far_behind_gets_a_reset_then_live_events()
    {
        await using var app = await services.StartAppAsync(settings: new Dictionary<string, string?> { ["Events:MaxReplay"] = "3" });
        var alice = await app.MemberAsync("far");
        var bob = await app.MemberAsync("far");
        var direct = await app.DirectAsync(alice, bob);
        for (var i = 0; i < 6; i++) await app.SendAsync(alice, direct.Id(), $"old {i}");
        await using var stream = await SseClient.OpenAsync(app, bob.Token, lastEventId: "0");
        var reset = await stream.NextAsync() ?? throw new Xunit.Sdk.XunitException("the stream ended");
        Assert.Equal("reset", reset.Event);
        Assert.Equal("", reset.Data);
        Assert.False(string.IsNullOrEmpty(reset.Id));
        var sent = await app.SendAsync(alice, direct.Id(), "live");
        var live = await NextMessageAsync(stream);
        Assert.Equal(sent.Id(), JsonNode.Parse(live.Data)!.Id());
        Assert.True(long.Parse(live.Id!) > long.Parse(reset.Id!));
        // Near enough, the same client replays as before.
        await using var near = await SseClient.OpenAsync(app, bob.Token, lastEventId: reset.Id);
        Assert.Equal(sent.Id(), JsonNode.Parse((await NextMessageAsync(near)).Data)!.Id());
    }

    [Fact]
    public async Task A_client_whose_last_event_id_is_ahead_of_its_latest_event_gets_a_reset_then_every_new_event()
    {
        var app = await services.AppAsync();
        var alice = await app.MemberAsync("ahd");
        var bob = await app.MemberAsync("ahd");
        var direct = await app.DirectAsync(alice, bob);
        await app.SendAsync(alice, direct.Id(), "before");
        // A mistyped id, or one from before the server was restored from an older backup.
        await using var stream = await SseClient.OpenAsync(app, bob.Token, lastEventId: "1000000");
        var reset = await stream.NextAsync() ?? throw new Xunit.Sdk.XunitException("the stream ended");
        Assert.Equal("reset", reset.Event);
        Assert.Equal("", reset.Data);
        var latest = long.Parse(reset.Id!);
        Assert.True(latest < 1000000, $"the reset carried {latest}, not the latest event");
        // The next event, numbered just after the latest, is not held back for the id the client claimed.
        var sent = await app.SendAsync(alice, direct.Id(), "after");
        var live = await NextMessageAsync(stream);
        Assert.Equal(sent.Id(), JsonNode.Parse(live.Data)!.Id());
        Assert.Equal(latest + 1, long.Parse(live.Id!));
    }

    [Theory]
    [InlineData("abc", null, "Last-Event-ID")]
    [InlineData("-5", null, "Last-Event-ID")]
    [InlineData("99999999999999999999", null, "Last-Event-ID")]
    [InlineData(null, "abc", "after")]
    [InlineData(null, "-1", "after")]
    [InlineData("3", "x", "after")]
    public async Task A_resume_point_that_is_no_event_id_is_refused_rather_than_taken_for_none(string? lastEventId, string? after, string named)
    {
        var app = await services.AppAsync();
        var alice = await app.MemberAsync("rsm");
        var path = after is null ? "/api/events" : $"/api/events?after={Uri.EscapeDataString(after)}";
        await using var stream = await SseClient.OpenAsync(app, alice.Token, lastEventId, path);
        Assert.Equal(400, (int)stream.Response.StatusCode);
        Assert.Equal("application/problem+json", stream.Response.Content.Headers.ContentType?.MediaType);
        var problem = JsonNode.Parse(await stream.Response.Content.ReadAsStringAsync())!;
        Assert.Equal($"Invalid {named}", problem["title"]!.GetValue<string>());
        // A refused stream is not counted against the user's open streams.
        await using var valid = await SseClient.OpenAsync(app, alice.Token, "0", "/api/events?after=");
        Assert.Equal(200, (int)valid.Response.StatusCode);
    }

    [Fact]
    public async Task The_documents_pattern_for_a_resume_point_admits_exactly_the_event_ids_the_stream_takes()
    {
        var app = await services.AppAsync();
        var alice = await app.MemberAsync("rsp");
        var document = JsonNode.Parse(await (await app.CallAsync("GET", "/openapi.json", null, null, 200)).ReadAsTextAsync())!;
        var parameters = document["paths"]!["/api/events"]!["get"]!["parameters"]!.AsArray();
        var patterns = parameters.Where(p => p!["name"]!.GetValue<string>() is "Last-Event-ID" or "after")
            .Select(p => p!["schema"]!["pattern"]!.GetValue<string>()).Distinct().ToList();
        var pattern = new System.Text.RegularExpressions.Regex(Assert.Single(patterns));

        // Against the stream itself at the edges: 2^63−1 and 2^63, with and without leading zeros.
        foreach (var id in new[] { "9223372036854775807", "9223372036854775808", "09223372036854775807", "0009223372036854775808", "99999999999999999999", "0" })
        {
            await using var stream = await SseClient.OpenAsync(app, alice.Token, id);
            Assert.True(pattern.IsMatch(id) == ((int)stream.Response.StatusCode == 200), $"{id}: the pattern says {pattern.IsMatch(id)}, the stream {(int)stream.Response.StatusCode}");
        }
        // Against the stream's parse (long.TryParse, digits only) everywhere else: each digit of
        // 2^63−1 one up and one down, and numbers of every length around it.
        var max = long.MaxValue.ToString(System.Globalization.CultureInfo.InvariantCulture);
        var values = new List<string> { "", "00000000000000000000000001", "1" + new string('0', 18), new string('9', 18), new string('9', 19), "-1", "1e3", " 1" };
        for (var i = 0; i < max.Length; i++)
            foreach (var step in new[] { -1, 1 })
                if (max[i] + step is >= '0' and <= '9' and var digit)
                    values.Add(max[..i] + (char)digit + max[(i + 1)..]);
        var random = new Random(8);
        for (var i = 0; i < 20_000; i++)
            values.Add(new string(Enumerable.Range(0, random.Next(1, 21)).Select(_ => (char)('0' + random.Next(10))).ToArray()));
        var disagreeing = values.Where(v => pattern.IsMatch(v) != (v.Length == 0 || long.TryParse(v, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out _))).ToList();
        Assert.Empty(disagreeing);
    }
}
