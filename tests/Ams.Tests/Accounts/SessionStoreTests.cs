using System.Collections.Concurrent;
using System.Diagnostics;
using Ams.Infrastructure;
using Ams.Testing;
using Ams.Tests.Support;
using Microsoft.Extensions.Hosting.Internal;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using MySqlConnector;
using StackExchange.Redis;

namespace Ams.Tests.Accounts;

/// <summary>
/// The session store on its own, against a real redis-server and a fake clock: what the session
/// list shows, the key lifetimes, and what one node does while Redis is unreachable (the outage
/// fallback, revocations kept until Redis takes them). A bare store hears no revocation
/// announcements, so each forgetting it must do itself shows here.
/// </summary>
public sealed class SessionStoreTests : IAsyncLifetime
{
    static readonly DateTimeOffset Start = new(2026, 12, 2, 9, 0, 0, TimeSpan.Zero);
    readonly FakeTimeProvider time = new(Start);
    RedisServer redis = null!;
    ConnectionMultiplexer connection = null!;

    public async Task InitializeAsync()
    {
        redis = await RedisServer.StartAsync();
        connection = await ConnectionMultiplexer.ConnectAsync(redis.ConnectionString + ",connectTimeout=1000,syncTimeout=1000,asyncTimeout=1000,abortConnect=false");
    }

    public async Task DisposeAsync()
    {
        await connection.DisposeAsync();
        await redis.DisposeAsync();
    }

    SessionStore Store(SessionLifetime? lifetime = null, IConnectionMultiplexer? multiplexer = null, ILogger<SessionStore>? logger = null)
    {
        multiplexer ??= connection;
        var circuit = new RedisCircuit(multiplexer, NullLogger<RedisCircuit>.Instance);
        var mariadb = new MariaDb("Server=127.0.0.1;Port=1");
        var store = new SessionStore(multiplexer, circuit, time, lifetime ?? new SessionLifetime(),
            new AccessTokenStore(mariadb, new MariaDbCircuit(mariadb, new ApplicationLifetime(NullLogger<ApplicationLifetime>.Instance), NullLogger<MariaDbCircuit>.Instance),
                circuit, time, NullLogger<AccessTokenStore>.Instance),
            new ReplicatedWrites(multiplexer, circuit, ConfigurationOptions.Parse(multiplexer.Configuration), new ReplicationOptions(), NullLogger<ReplicatedWrites>.Instance),
            logger ?? NullLogger<SessionStore>.Instance);
        store.Listen();   // as a serving node's host does
        return store;
    }

    IDatabase Db => connection.GetDatabase();

    // Spelled out here so a renamed key fails these tests: the session key is the Redis Cluster hash tag.
    static string MetaKey(string id) => $"ams:session-meta:{{ams:session:{id}}}";
    // The user's index: sixteen sets, by the session id's first hex digit.
    static string IndexKey(long user, string id) => $"ams:user-sessions:{user}:{id[0]}";

    async Task<string[]> IndexedAsync(long user)
    {
        var ids = new List<string>();
        foreach (var digit in "0123456789abcdef") ids.AddRange((await Db.SetMembersAsync($"ams:user-sessions:{user}:{digit}")).Select(v => (string)v!));
        return [.. ids.Order(StringComparer.Ordinal)];
    }

    static async Task<Exception?> OutageAsync(Func<Task> call)
    {
        try { await call(); return null; }
        catch (Exception e) { return e; }
    }

    async Task StopRedisAsync()
    {
        await redis.StopAsync();
        // Until the multiplexer notices, a call may still be queued rather than fail.
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (connection.IsConnected && DateTime.UtcNow < deadline) await Task.Delay(50);
    }

    async Task StartRedisAgainAsync()
    {
        await redis.StartAgainAsync();
        var deadline = DateTime.UtcNow.AddSeconds(15);
        while (DateTime.UtcNow < deadline)
        {
            try { await Db.PingAsync(); return; }
            catch (Exception e) when (e is RedisException or TimeoutException) { await Task.Delay(100); }
        }
    }

    [Fact]
    public async Task The_list_shows_each_sessions_times_and_last_seen_moves_once_a_minute()
    {
        var store = Store(new SessionLifetime { LocalCache = TimeSpan.Zero });   // every lookup reaches Redis
        var (token, session) = await store.CreateAsync(7);
        var info = Assert.Single(await store.ListAsync(7));
        Assert.Equal((session.Id, Start, Start, "", ""), (info.Id, info.CreatedAt, info.LastSeenAt, info.UserAgent, info.Address));
        Assert.Equal(Start + new SessionLifetime().AbsoluteLifetime, session.ExpiresAt);

        time.Advance(TimeSpan.FromSeconds(59));
        Assert.NotNull(await store.FindAsync(token));
        Assert.Equal(Start, Assert.Single(await store.ListAsync(7)).LastSeenAt);
        time.Advance(TimeSpan.FromSeconds(1));
        Assert.NotNull(await store.FindAsync(token));
        info = Assert.Single(await store.ListAsync(7));
        Assert.Equal((Start, Start.AddMinutes(1)), (info.CreatedAt, info.LastSeenAt));
        Assert.Empty(await store.ListAsync(8));
    }

    [Fact]
    public async Task Sessions_that_idled_out_leave_the_index_at_the_next_sign_in_without_a_session_list()
    {
        var store = Store();
        var sessions = new List<string>();
        for (var i = 0; i < 40; i++) sessions.Add((await store.CreateAsync(31)).Session.Id);
        await WaitUntilAsync(async () => (await Db.SetLengthAsync("ams:user-sessions:31")) == 40);
        // Idled out: Redis expired their keys, nothing revoked them.
        foreach (var id in sessions.Take(39)) await Db.KeyDeleteAsync($"ams:session:{id}");

        // Each sign-in tidies the set it joins: once one has landed in every set, only the live sessions are left.
        var signIns = new List<string>();
        while (!"0123456789abcdef".All(digit => signIns.Any(id => id[0] == digit)))
            signIns.Add((await store.CreateAsync(31)).Session.Id);
        string[] expected = [.. signIns.Append(sessions[39]).Order(StringComparer.Ordinal)];
        await WaitUntilAsync(async () => (await IndexedAsync(31)).SequenceEqual(expected));
        await WaitUntilAsync(async () => (await Db.SetMembersAsync("ams:user-sessions:31")).Select(v => (string)v!).Order(StringComparer.Ordinal).SequenceEqual(expected));
    }

    static async Task WaitUntilAsync(Func<Task<bool>> condition)
    {
        for (var tries = 0; tries < 100 && !await condition(); tries++) await Task.Delay(50);
        Assert.True(await condition());
    }

    [Fact]
    public async Task A_session_from_release_0_15_lists_its_creation_time_from_its_absolute_expiry()
    {
        // 0.15 kept no creation time in the metadata (it listed as 1970-01-01).
        var store = Store();
        var (_, session) = await store.CreateAsync(9);
        await Db.HashDeleteAsync(MetaKey(session.Id), "c");
        time.Advance(TimeSpan.FromHours(3));
        Assert.Equal(Start, Assert.Single(await store.ListAsync(9)).CreatedAt);
    }

    [Fact]
    public async Task With_LocalCache_zero_every_lookup_asks_Redis_so_a_session_gone_from_it_is_refused_at_once()
    {
        var store = Store(new SessionLifetime { LocalCache = TimeSpan.Zero });
        var (token, session) = await store.CreateAsync(20);
        Assert.NotNull(await store.FindAsync(token));
        // Gone from Redis with no announcement: nothing on the node still vouches for it.
        Assert.True(await Db.KeyDeleteAsync(SessionKey(session.Id)));
        Assert.Null(await store.FindAsync(token));
    }

    [Fact]
    public async Task With_LocalCache_zero_nodes_still_ping_and_acknowledge_so_a_logout_does_not_wait_out_the_hearing_limit()
    {
        await using var other = await ConnectionMultiplexer.ConnectAsync(redis.ConnectionString);
        var off = new SessionLifetime { LocalCache = TimeSpan.Zero };
        var (node1, node2) = (Store(off), Store(off, multiplexer: other));
        var (_, session) = await node1.CreateAsync(29);
        await Eventually.TrueAsync(() => node1.HearsRevocations && node2.HearsRevocations);
        await Task.Delay(SessionLifetime.HearingLimit + TimeSpan.FromMilliseconds(300));
        var revoking = Stopwatch.StartNew();
        await node1.RevokeAsync(session);
        Assert.True(revoking.Elapsed < SessionLifetime.HearingLimit, $"the revocation took {revoking.Elapsed}");
    }

    [Fact]
    public async Task A_node_that_stops_says_goodbye_so_a_revocation_right_after_does_not_wait_for_its_acknowledgement()
    {
        var other = await ConnectionMultiplexer.ConnectAsync(redis.ConnectionString);
        var (node1, node2) = (Store(), Store(multiplexer: other));
        var (_, session) = await node1.CreateAsync(31);
        await Eventually.TrueAsync(() => node1.HearsRevocations && node2.HearsRevocations);
        // Node 1 has listened long enough to count on acknowledgements, and heard node 2's pings lately.
        await Task.Delay(SessionLifetime.HearingLimit + TimeSpan.FromMilliseconds(300));
        // Node 2 stops as a server does: its store, then its connection.
        await node2.DisposeAsync();
        await other.DisposeAsync();
        var revoking = Stopwatch.StartNew();
        await node1.RevokeAsync(session);
        Assert.True(revoking.Elapsed < SessionLifetime.HearingLimit, $"the revocation took {revoking.Elapsed}");
    }

    [Fact]
    public async Task A_goodbye_heard_while_a_revocation_waits_for_that_node_ends_the_wait()
    {
        var node = Store();
        var (_, session) = await node.CreateAsync(32);
        await Eventually.TrueAsync(() => node.HearsRevocations);
        // A node that pings but does not acknowledge: one stopping in the middle of a revocation.
        var silent = connection.GetSubscriber();
        using var stopPinging = new CancellationTokenSource();
        var pings = Task.Run(async () =>
        {
            while (!stopPinging.IsCancellationRequested)
            {
                await silent.PublishAsync(SessionStore.RevokedChannel, $"ping:silent:{Stopwatch.GetTimestamp()}");
                await Task.Delay(50);
            }
        });
        await Task.Delay(SessionLifetime.HearingLimit + TimeSpan.FromMilliseconds(300));
        var revoking = Stopwatch.StartNew();
        var revocation = node.RevokeAsync(session);
        await Task.Delay(150);
        Assert.False(revocation.IsCompleted, "the revocation did not wait for the silent node");
        await stopPinging.CancelAsync();
        await pings;
        await silent.PublishAsync(SessionStore.RevokedChannel, "bye:silent");
        await revocation;
        Assert.True(revoking.Elapsed < SessionLifetime.HearingLimit - TimeSpan.FromMilliseconds(50), $"the revocation took {revoking.Elapsed}");
    }

    [Fact]
    public async Task By_default_a_confirmed_session_is_trusted_for_ten_seconds_without_Redis_then_asked_again()
    {
        var store = Store();
        var (token, session) = await store.CreateAsync(21);
        await Eventually.TrueAsync(() => CachesAsync(store, token));
        var lookups = await EvalCallsAsync();
        // Gone from Redis with no announcement (the revoking node died in between): the copy
        // serves until LocalCache (10 s) has passed since Redis last confirmed it.
        Assert.True(await Db.KeyDeleteAsync(SessionKey(session.Id)));
        time.Advance(TimeSpan.FromSeconds(9));
        Assert.Equal(session, await store.FindAsync(token));
        Assert.Equal(lookups, await EvalCallsAsync());
        time.Advance(TimeSpan.FromSeconds(1));
        Assert.Null(await store.FindAsync(token));
        Assert.Equal(lookups + 1, await EvalCallsAsync());
    }

    [Fact]
    public async Task A_revocation_is_answered_once_every_caching_node_has_dropped_its_copy()
    {
        await using var other = await ConnectionMultiplexer.ConnectAsync(redis.ConnectionString);
        var (node1, node2) = (Store(), Store(multiplexer: other));
        var (token, session) = await node1.CreateAsync(22);
        // Once node 2 hears its own pings, its lookups come from its cache; node 1 counts on the
        // acknowledgements once it has listened long enough to have heard every node.
        await Eventually.TrueAsync(() => CachesAsync(node2, token));
        await Eventually.TrueAsync(() => node1.HearsRevocations);
        await Task.Delay(SessionLifetime.HearingLimit + TimeSpan.FromMilliseconds(300));
        Assert.NotNull(await node2.FindAsync(token));
        var revoking = Stopwatch.StartNew();
        await node1.RevokeAsync(session);
        // Node 2 acknowledged: no need to wait out the hearing limit.
        Assert.True(revoking.Elapsed < SessionLifetime.HearingLimit, $"the revocation took {revoking.Elapsed}");
        Assert.Null(await node2.FindAsync(token));
    }

    [Fact]
    public async Task A_revocation_waits_for_each_node_heard_lately_and_no_longer_than_the_hearing_limit()
    {
        var store = Store();
        var (warmup, _) = await store.CreateAsync(25);
        await Eventually.TrueAsync(() => CachesAsync(store, warmup));
        // Another caching node, played by this test: its pings are heard, its acknowledgements
        // are sent only when asked to.
        const string peer = "feedfacefeedface";
        var acknowledge = false;
        await connection.GetSubscriber().SubscribeAsync(SessionStore.RevokedChannel, (_, message) =>
        {
            if (Volatile.Read(ref acknowledge) && SessionStore.RevokedSessionOf(message!) is { } id)
                connection.GetSubscriber().Publish(SessionStore.RevokedChannel, $"ack:{peer}:{id}", CommandFlags.FireAndForget);
        });
        using var pinging = new CancellationTokenSource();
        var pings = Task.Run(async () =>
        {
            while (!pinging.IsCancellationRequested)
            {
                await connection.GetSubscriber().PublishAsync(SessionStore.RevokedChannel, $"ping:{peer}:1");
                await Task.Delay(100);
            }
        });
        await Task.Delay(300);

        var (_, silent) = await store.CreateAsync(25);
        var revoking = Stopwatch.StartNew();
        await store.RevokeAsync(silent);
        Assert.InRange(revoking.Elapsed, SessionLifetime.HearingLimit - TimeSpan.FromMilliseconds(20), SessionLifetime.HearingLimit * 3);

        Volatile.Write(ref acknowledge, true);
        var (_, answered) = await store.CreateAsync(25);
        revoking.Restart();
        await store.RevokeAsync(answered);
        Assert.True(revoking.Elapsed < SessionLifetime.HearingLimit / 2, $"the acknowledged revocation took {revoking.Elapsed}");
        await pinging.CancelAsync();
        await pings;
    }

    [Fact]
    public async Task A_node_that_has_just_begun_to_listen_waits_out_the_hearing_limit_rather_than_count_on_the_nodes_it_knows()
    {
        await using var other = await ConnectionMultiplexer.ConnectAsync(redis.ConnectionString);
        var node2 = Store(multiplexer: other);
        var (token, session) = await node2.CreateAsync(27);
        await Eventually.TrueAsync(() => CachesAsync(node2, token));
        // Node 1 has heard nobody's pings yet but its own first ones: another node may not be among them.
        var node1 = Store();
        await Eventually.TrueAsync(() => node1.HearsRevocations);
        var revoking = Stopwatch.StartNew();
        await node1.RevokeAsync(session);
        Assert.True(revoking.Elapsed >= SessionLifetime.HearingLimit - TimeSpan.FromMilliseconds(20), $"the revocation took {revoking.Elapsed}");
        Assert.Null(await node2.FindAsync(token));
    }

    [Fact]
    public async Task A_revocation_deleted_but_not_announced_is_answered_only_once_every_copy_is_past_LocalCache()
    {
        var store = Store(new SessionLifetime { LocalCache = TimeSpan.FromSeconds(1) });
        var (_, session) = await store.CreateAsync(28);
        await AdminAsync("ACL", "SETUSER", "default", "-publish");
        try
        {
            var revoking = Stopwatch.StartNew();
            await store.RevokeAsync(session);
            Assert.True(revoking.Elapsed >= TimeSpan.FromSeconds(1), $"answered after {revoking.Elapsed} with no announcement out");
            Assert.False(await Db.KeyExistsAsync(SessionKey(session.Id)));
        }
        finally
        {
            await AdminAsync("ACL", "SETUSER", "default", "+publish");
        }
    }

    [Fact]
    public async Task A_node_that_no_longer_hears_its_own_pings_asks_Redis_again()
    {
        // One ping at the start, then none: as if the node's subscription had gone deaf.
        var store = Store(new SessionLifetime { PingInterval = TimeSpan.FromHours(1) });
        var (token, session) = await store.CreateAsync(26);
        await Eventually.TrueAsync(() => store.HearsRevocations);
        Assert.NotNull(await store.FindAsync(token));
        // Gone from Redis unannounced: once the node's last ping heard is older than the hearing
        // limit, its copy no longer serves.
        Assert.True(await Db.KeyDeleteAsync(SessionKey(session.Id)));
        await Eventually.TrueAsync(() => !store.HearsRevocations);
        Assert.Null(await store.FindAsync(token));
    }

    [Fact]
    public async Task A_revocation_channel_gone_deaf_without_an_error_is_subscribed_again_and_heard()
    {
        var store = Store();
        var missed = 0;
        var announced = new System.Collections.Concurrent.ConcurrentQueue<string>();
        store.AnnouncementsMissed += () => Interlocked.Increment(ref missed);
        store.Revoked += announced.Enqueue;
        await Eventually.TrueAsync(() => store.HearsRevocations);
        // Redis drops every subscription to channels the user may no longer use, and refuses them
        // when the client reconnects; once allowed again, the client does not subscribe again by itself.
        await AdminAsync("ACL", "SETUSER", "default", "resetchannels");
        await Eventually.TrueAsync(() => !store.HearsRevocations);
        await AdminAsync("ACL", "SETUSER", "default", "allchannels");

        await Eventually.TrueAsync(() => store.HearsRevocations, SessionStore.SilenceLimit + TimeSpan.FromSeconds(5));
        Assert.True(Volatile.Read(ref missed) >= 1, "the streams were not told that announcements may have been missed");
        await connection.GetSubscriber().PublishAsync(SessionStore.RevokedChannel, new string('d', 64));
        await Eventually.TrueAsync(() => announced.Contains(new string('d', 64)));
    }

    [Fact]
    public async Task A_paused_Redis_is_not_taken_for_a_deaf_revocation_channel()
    {
        // The production timeout: a ping waits up to 5 s for Redis to answer it.
        await using var patient = await ConnectionMultiplexer.ConnectAsync(redis.ConnectionString + ",abortConnect=false");
        var store = Store(multiplexer: patient);
        var missed = 0;
        store.AnnouncementsMissed += () => Interlocked.Increment(ref missed);
        await Eventually.TrueAsync(() => store.HearsRevocations);
        redis.Pause();
        try
        {
            await Task.Delay(SessionStore.SilenceLimit + TimeSpan.FromSeconds(1));   // past the silence limit, within the timeout
        }
        finally
        {
            redis.Resume();
        }
        await Eventually.TrueAsync(() => store.HearsRevocations);
        await Task.Delay(SessionStore.SilenceLimit);
        Assert.Equal(0, Volatile.Read(ref missed));
    }

    // Whether the store answers for the session from its cache (asks Redis once, then not again).
    async Task<bool> CachesAsync(SessionStore store, string token)
    {
        Assert.NotNull(await store.FindAsync(token));
        var lookups = await EvalCallsAsync();
        Assert.NotNull(await store.FindAsync(token));
        return await EvalCallsAsync() == lookups;
    }

    [Fact]
    public async Task A_lookup_answered_after_the_announcement_overtook_it_is_refused()
    {
        var store = Store();
        var (token, session) = await store.CreateAsync(24);
        await Eventually.TrueAsync(() => connection.GetSubscriber().IsConnected(SessionStore.RevokedChannel));
        store.Forget(session.Id);   // the announcement, heard before a lookup that read the session just before its deletion
        Assert.True(await Db.KeyExistsAsync(SessionKey(session.Id)));
        Assert.Null(await store.FindAsync(token));
        Assert.Null(await store.FindAsync(token));
    }

    [Fact]
    public async Task After_its_subscription_dropped_a_node_trusts_nothing_it_confirmed_before()
    {
        var store = Store();
        var (token, session) = await store.CreateAsync(23);
        await Eventually.TrueAsync(() => CachesAsync(store, token));
        // Time goes on after the copy is confirmed, as it always does: on a clock standing still,
        // the first ping heard after the reconnect would date the trust back to the confirmation itself.
        time.Advance(TimeSpan.FromMilliseconds(1));
        var restored = 0;
        connection.ConnectionRestored += (_, e) =>
        {
            if (e.ConnectionType == ConnectionType.Subscription) Interlocked.Exchange(ref restored, 1);
        };
        // Redis drops this node's subscription, and a revocation goes by unheard.
        await using var admin = await ConnectionMultiplexer.ConnectAsync(redis.ConnectionString + ",allowAdmin=true");
        await admin.GetServer(admin.GetEndPoints()[0]).ExecuteAsync("CLIENT", "KILL", "TYPE", "pubsub");
        Assert.True(await Db.KeyDeleteAsync(SessionKey(session.Id)));
        // Once the node hears its own pings again, the copy it confirmed before is still not trusted.
        await Eventually.TrueAsync(() => Volatile.Read(ref restored) == 1);
        await Eventually.TrueAsync(() => store.HearsRevocations);
        Assert.Null(await store.FindAsync(token));

        // Back, a new session is cached again; the old one stays gone.
        var (again, _) = await store.CreateAsync(23);
        await Eventually.TrueAsync(() => connection.GetSubscriber().IsConnected(SessionStore.RevokedChannel));
        await Eventually.TrueAsync(async () => await CachesAsync(store, again));
    }

    async Task<long> EvalCallsAsync()
    {
        await using var admin = await ConnectionMultiplexer.ConnectAsync(redis.ConnectionString + ",allowAdmin=true");
        var stats = (string)(await admin.GetServer(admin.GetEndPoints()[0]).ExecuteAsync("INFO", "commandstats"))!;
        return stats.Split('\n').Where(l => l.StartsWith("cmdstat_eval")).Sum(l => long.Parse(l.Split("calls=")[1].Split(',')[0]));
    }

    [Fact]
    public async Task A_session_whose_metadata_is_gone_is_listed_with_empty_fields_and_the_times_its_expiry_gives()
    {
        var store = Store();
        var (_, session) = await store.CreateAsync(6);
        Assert.True(await Db.KeyDeleteAsync(MetaKey(session.Id)));
        time.Advance(TimeSpan.FromHours(1));
        var listed = Assert.Single(await store.ListAsync(6));
        Assert.Equal((session.Id, Start, Start, "", ""),
            (listed.Id, listed.CreatedAt, listed.LastSeenAt, listed.UserAgent, listed.Address));
    }

    [Fact]
    public async Task Sessions_an_earlier_release_indexed_in_one_set_per_user_are_listed_and_revoked_by_id_and_all_together()
    {
        var store = Store();
        var sessions = new List<Session>();
        for (var i = 0; i < 3; i++) sessions.Add((await store.CreateAsync(21)).Session);
        var (_, current) = await store.CreateAsync(21);
        foreach (var session in sessions)
        {
            // Where releases up to 0.15 indexed them.
            await Db.SetRemoveAsync(IndexKey(21, session.Id), session.Id);
            await Db.SetAddAsync("ams:user-sessions:21", session.Id);
        }
        Assert.Equal([current.Id], await IndexedAsync(21));
        // This release also writes the old set (best effort), for nodes of the earlier one.
        await Eventually.TrueAsync(() => Db.SetContainsAsync("ams:user-sessions:21", current.Id));

        Assert.Equal(sessions.Append(current).Select(s => s.Id).Order(StringComparer.Ordinal), (await store.ListAsync(21)).Select(s => s.Id).Order(StringComparer.Ordinal));
        Assert.True(await store.RevokeByIdAsync(21, sessions[0].Id));
        await Eventually.TrueAsync(async () => !await Db.SetContainsAsync("ams:user-sessions:21", sessions[0].Id));
        await store.RevokeAllAsync(21, exceptSessionId: current.Id);
        foreach (var session in sessions) Assert.False(await Db.KeyExistsAsync(SessionKey(session.Id)));
        Assert.True(await Db.KeyExistsAsync(SessionKey(current.Id)));
        Assert.Equal([current.Id], (await store.ListAsync(21)).Select(s => s.Id));
    }

    [Fact]
    public async Task The_list_is_newest_first_and_sessions_made_in_the_same_millisecond_keep_one_order()
    {
        var store = Store();
        var older = (await store.CreateAsync(5)).Session.Id;
        time.Advance(TimeSpan.FromMilliseconds(1));
        var twins = new[] { (await store.CreateAsync(5)).Session.Id, (await store.CreateAsync(5)).Session.Id };
        var list = await store.ListAsync(5);
        Assert.Equal([.. twins.Order(StringComparer.Ordinal), older], list.Select(s => s.Id));
        // A session gone from Redis leaves the list and the user's index.
        await Db.KeyDeleteAsync($"{Ams.Infrastructure.Redis.KeyPrefix}session:{older}");
        Assert.Equal(2, (await store.ListAsync(5)).Count);
        Assert.Equal(twins.Order(StringComparer.Ordinal), await IndexedAsync(5));
    }

    [Theory]
    [InlineData(1, 2, 1)]   // idle shorter: the key lives as long as the idle timeout
    [InlineData(3, 2, 2)]   // idle longer than the whole lifetime: the lifetime bounds the key
    public async Task A_new_sessions_keys_live_as_long_as_the_shorter_of_idle_and_lifetime(int idleHours, int lifetimeHours, int expectedHours)
    {
        var store = Store(new SessionLifetime { IdleTimeout = TimeSpan.FromHours(idleHours), AbsoluteLifetime = TimeSpan.FromHours(lifetimeHours) });
        var id = (await store.CreateAsync(9)).Session.Id;
        foreach (var key in new[] { $"{Ams.Infrastructure.Redis.KeyPrefix}session:{id}", MetaKey(id) })
        {
            var ttl = await Db.KeyTimeToLiveAsync(key);
            Assert.InRange(ttl!.Value, TimeSpan.FromHours(expectedHours) - TimeSpan.FromMinutes(1), TimeSpan.FromHours(expectedHours));
        }
        var index = await Db.KeyTimeToLiveAsync(IndexKey(9, id));
        Assert.InRange(index!.Value, TimeSpan.FromHours(lifetimeHours) - TimeSpan.FromMinutes(1), TimeSpan.FromHours(lifetimeHours));
    }

    [Fact]
    public async Task During_an_outage_a_session_seen_within_the_grace_still_works_and_one_past_it_or_expired_does_not()
    {
        var store = Store(new SessionLifetime { OutageGrace = TimeSpan.FromMinutes(5), AbsoluteLifetime = TimeSpan.FromMinutes(30) });
        var (token, session) = await store.CreateAsync(11);
        var (unseenToken, _) = await store.CreateAsync(11);
        Assert.NotNull(await store.FindAsync(token));
        await StopRedisAsync();

        Assert.Equal(session.Id, (await store.FindAsync(token))!.Id);
        Assert.NotNull(await OutageAsync(() => store.FindAsync(unseenToken)));   // never confirmed on this node
        Assert.True(await store.ExistsAsync(session.Id));                         // an outage is no logout
        time.Advance(TimeSpan.FromMinutes(5));
        Assert.Equal(session.Id, (await store.FindAsync(token))!.Id);             // the grace's last instant
        time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.NotNull(await OutageAsync(() => store.FindAsync(token)));
    }

    [Fact]
    public async Task During_an_outage_no_session_is_made_and_only_tokens_of_the_session_shape_are_looked_up()
    {
        var store = Store();
        await StopRedisAsync();
        Assert.NotNull(await OutageAsync(() => store.CreateAsync(19)));   // a sign-in answers 503, never a dead token

        // "ams_" and at most 64 characters: anything else is refused without asking Redis, so
        // garbage gets 401 even now; a token of the right shape can only be answered by Redis.
        var longest = "ams_" + new string('A', 60);
        Assert.NotNull(await OutageAsync(() => store.FindAsync(longest)));
        Assert.Null(await store.FindAsync(longest + "A"));
        Assert.Null(await store.FindAsync("sms_" + new string('A', 43)));
        Assert.Null(await store.FindAsync(""));

        // The same shape rule for the cookie a new sign-in replaces: only a session token is kept for revocation.
        await store.RevokeTokenAsync(longest + "A");
        await store.RevokeTokenAsync("sms_" + new string('A', 43));
        Assert.Equal(0, store.PendingRevocations);
        await store.RevokeTokenAsync(longest);
        Assert.Equal(1, store.PendingRevocations);
    }

    [Fact]
    public async Task During_an_outage_a_session_past_its_lifetime_does_not_work()
    {
        var store = Store(new SessionLifetime { OutageGrace = TimeSpan.FromHours(1), AbsoluteLifetime = TimeSpan.FromMinutes(10) });
        var (token, _) = await store.CreateAsync(12);
        time.Advance(TimeSpan.FromMinutes(9));
        Assert.NotNull(await store.FindAsync(token));
        await StopRedisAsync();
        Assert.NotNull(await store.FindAsync(token));
        time.Advance(TimeSpan.FromMinutes(1));
        Assert.NotNull(await OutageAsync(() => store.FindAsync(token)));
    }

    [Fact]
    public async Task A_revocation_during_an_outage_is_refused_at_once_and_written_when_Redis_returns()
    {
        var store = Store();
        var (token, session) = await store.CreateAsync(13);
        var (other, _) = await store.CreateAsync(13);
        Assert.NotNull(await store.FindAsync(token));
        Assert.NotNull(await store.FindAsync(other));
        await SaveAsync();
        await StopRedisAsync();

        await store.RevokeAsync(session);   // never fails: a logout always completes
        Assert.Equal(1, store.PendingRevocations);
        Assert.Null(await store.FindAsync(token));
        Assert.False(await store.ExistsAsync(session.Id));
        Assert.False(await store.ConfirmAsync(session.Id, CancellationToken.None));
        Assert.NotNull(await store.FindAsync(other));   // the other session rides out the outage

        await StartRedisAgainAsync();
        // Written by the retry loop (or the reconnect), without anyone asking again.
        var deadline = DateTime.UtcNow.AddSeconds(15);
        while (store.PendingRevocations > 0 && DateTime.UtcNow < deadline) await Task.Delay(100);
        Assert.Equal(0, store.PendingRevocations);
        Assert.False(await Db.KeyExistsAsync($"{Ams.Infrastructure.Redis.KeyPrefix}session:{session.Id}"));
        await Eventually.TrueAsync(async () => !(await IndexedAsync(13)).Contains(session.Id));   // dropped from the index after the deletion
        Assert.Null(await store.FindAsync(token));
        Assert.NotNull(await store.FindAsync(other));
        Assert.Single(await store.ListAsync(13));
    }

    [Fact]
    public async Task Revocations_that_wait_for_Redis_are_retried_until_it_takes_them()
    {
        var store = Store();
        var sessions = new List<Session>();
        for (var i = 0; i < 3; i++) sessions.Add((await store.CreateAsync(14)).Session);
        await SaveAsync();
        await StopRedisAsync();
        foreach (var s in sessions) await store.RevokeAsync(s);
        Assert.Equal(3, store.PendingRevocations);
        await store.RetryPendingAsync();   // still down: they wait on
        Assert.Equal(3, store.PendingRevocations);
        await Task.Delay(2500);            // the retry loop keeps going while Redis is down
        Assert.Equal(3, store.PendingRevocations);

        await StartRedisAgainAsync();
        var deadline = DateTime.UtcNow.AddSeconds(15);
        while (store.PendingRevocations > 0 && DateTime.UtcNow < deadline) await Task.Delay(100);
        Assert.Equal(0, store.PendingRevocations);
        Assert.Empty(await store.ListAsync(14));
        foreach (var s in sessions) Assert.False(await store.ConfirmAsync(s.Id, CancellationToken.None));
    }

    [Fact]
    public async Task A_revocation_Redis_refuses_on_a_live_connection_is_retried_every_second_until_it_is_taken()
    {
        // Redis stays connected and only refuses deletes (StackExchange.Redis deletes with
        // UNLINK), so no reconnect can write the revocation: only the retry loop does.
        var logs = new CapturedLogs();
        using var logging = LoggerFactory.Create(b => b.AddProvider(logs));
        var store = Store(logger: logging.CreateLogger<SessionStore>());
        var (token, session) = await store.CreateAsync(17);
        var (other, _) = await store.CreateAsync(17);
        var (thirdToken, third) = await store.CreateAsync(17);
        var announced = new ConcurrentQueue<string>();
        await connection.GetSubscriber().SubscribeAsync(SessionStore.RevokedChannel, (_, message) =>
        {
            if (SessionStore.RevokedSessionOf(message!) is { } id) announced.Enqueue(id);
        });
        await AdminAsync("ACL", "SETUSER", "default", "-del", "-unlink");

        await store.RevokeAsync(session);
        await store.RevokeAsync(third);
        Assert.Equal(2, store.PendingRevocations);
        Assert.Null(await store.FindAsync(token));
        Assert.Null(await store.FindAsync(thirdToken));
        await Task.Delay(2500);   // two rounds of the loop, each refused
        Assert.Equal(2, store.PendingRevocations);
        // Once a second, not in a tight loop: the two revocations and at most three rounds (each
        // stopping at its first refusal) asked Redis.
        var info = await AdminInfoAsync("commandstats");
        var refused = int.Parse(System.Text.RegularExpressions.Regex.Match(info, @"cmdstat_unlink:.*rejected_calls=(\d+)").Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
        Assert.InRange(refused, 3, 5);
        Assert.True(await Db.KeyExistsAsync(SessionKey(session.Id)));
        Assert.Empty(announced);

        await AdminAsync("ACL", "SETUSER", "default", "+del", "+unlink");
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while ((store.PendingRevocations > 0 || announced.IsEmpty) && DateTime.UtcNow < deadline) await Task.Delay(50);
        Assert.Equal(0, store.PendingRevocations);
        Assert.False(await Db.KeyExistsAsync(SessionKey(session.Id)));
        await Eventually.TrueAsync(async () => !(await IndexedAsync(17)).Contains(session.Id));
        Assert.False(await Db.KeyExistsAsync(SessionKey(third.Id)));
        Assert.Equal(new[] { session.Id, third.Id }.Order(), announced.Order());
        Assert.NotNull(await store.FindAsync(other));
        // One line when the outage starts and one when it ends, however many sessions it held up.
        Assert.Single(logs.Lines, l => l.Contains("kept on this node and retried"));
        Assert.Single(logs.Lines, l => l.Contains("2 session revocations kept on this node are now in effect on every node"));
    }

    [Fact]
    public async Task Confirming_a_session_waits_about_five_seconds_for_Redis_and_says_no_if_it_never_answers()
    {
        // The app's own connection settings: fail at once while disconnected, never queue.
        var options = ConfigurationOptions.Parse(redis.ConnectionString);
        options.AbortOnConnectFail = false;
        options.ConnectTimeout = 1000;
        options.BacklogPolicy = BacklogPolicy.FailFast;
        options.ReconnectRetryPolicy = new LinearRetry(100);
        await using var failFast = await ConnectionMultiplexer.ConnectAsync(options);
        var store = Store(multiplexer: failFast);
        var (_, session) = await store.CreateAsync(18);
        await SaveAsync();
        await StopRedisAsync();
        while (failFast.IsConnected) await Task.Delay(50);

        var waited = Stopwatch.StartNew();
        Assert.False(await store.ConfirmAsync(session.Id, CancellationToken.None));
        Assert.True(waited.Elapsed >= TimeSpan.FromSeconds(4), $"gave up after {waited.Elapsed} instead of waiting for Redis");

        var confirming = store.ConfirmAsync(session.Id, CancellationToken.None);
        await StartRedisAgainAsync();
        Assert.True(await confirming);
    }

    [Fact]
    public async Task A_session_revoked_by_id_or_with_all_others_is_forgotten_by_the_outage_fallback_at_once()
    {
        var store = Store();
        var (byId, byIdSession) = await store.CreateAsync(15);
        var (kept, keptSession) = await store.CreateAsync(15);
        var (others, _) = await store.CreateAsync(15);
        var (bySelf, bySelfSession) = await store.CreateAsync(15);
        foreach (var t in new[] { byId, kept, others, bySelf }) Assert.NotNull(await store.FindAsync(t));

        Assert.True(await store.RevokeByIdAsync(15, byIdSession.Id));
        Assert.False(await store.RevokeByIdAsync(15, byIdSession.Id));
        await store.RevokeAsync(bySelfSession);
        await Eventually.TrueAsync(async () => !(await IndexedAsync(15)).Contains(bySelfSession.Id));
        await store.RevokeTokenAsync(bySelf);   // a cookie whose session is already gone: nothing to do
        Assert.Equal(0, store.PendingRevocations);
        await store.RevokeAllAsync(15, exceptSessionId: keptSession.Id);
        Assert.Equal(0, store.PendingRevocations);
        await Eventually.TrueAsync(async () => (await IndexedAsync(15)).SequenceEqual([keptSession.Id]));
        foreach (var gone in new[] { byIdSession.Id, bySelfSession.Id })
            Assert.False(await Db.KeyExistsAsync(MetaKey(gone)));
        await StopRedisAsync();

        // No announcement reached this bare store: only its own forgetting keeps them out, and it
        // refuses them without asking Redis (a revocation is final).
        Assert.Null(await store.FindAsync(byId));
        Assert.Null(await store.FindAsync(others));
        Assert.Null(await store.FindAsync(bySelf));
        Assert.Equal(keptSession.Id, (await store.FindAsync(kept))!.Id);
    }

    [Fact]
    public async Task Session_ids_are_64_lower_case_hex_and_nothing_else_is_looked_up()
    {
        var store = Store();
        var (_, session) = await store.CreateAsync(16);
        Assert.True(SessionStore.IsSessionId(session.Id));
        foreach (var bad in new[] { session.Id.ToUpperInvariant(), session.Id[..63], session.Id + "0", session.Id[..63] + "g", "", new string('/', 64) })
        {
            Assert.False(SessionStore.IsSessionId(bad), bad);
            Assert.False(await store.RevokeByIdAsync(16, bad));
        }
        Assert.True(SessionStore.IsSessionId(new string('0', 32) + new string('f', 32)));
        Assert.Single(await store.ListAsync(16));
    }

    static string SessionKey(string id) => $"{Ams.Infrastructure.Redis.KeyPrefix}session:{id}";

    Task SaveAsync() => AdminAsync("SAVE");

    async Task<string> AdminInfoAsync(string section)
    {
        await using var admin = await ConnectionMultiplexer.ConnectAsync(redis.ConnectionString + ",allowAdmin=true");
        return (string)(await admin.GetDatabase().ExecuteAsync("INFO", section))!;
    }

    async Task AdminAsync(string command, params object[] args)
    {
        await using var admin = await ConnectionMultiplexer.ConnectAsync(redis.ConnectionString + ",allowAdmin=true");
        await admin.GetDatabase().ExecuteAsync(command, args);
    }
}
