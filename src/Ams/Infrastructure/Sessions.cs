using System.Buffers.Text;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using StackExchange.Redis;

namespace Ams.Infrastructure;

public sealed class SessionLifetime
{
    public TimeSpan IdleTimeout { get; set; } = TimeSpan.FromHours(12);
    public TimeSpan AbsoluteLifetime { get; set; } = TimeSpan.FromDays(7);
    /// <summary>While Redis is unreachable, a session this node saw valid this recently still works.</summary>
    public TimeSpan OutageGrace { get; set; } = TimeSpan.FromMinutes(5);
    /// <summary>
    /// How long a node trusts a session it confirmed in Redis before asking again; zero asks Redis
    /// on every request. A revocation is answered only once every node that may hold a copy has
    /// dropped it, or has stopped trusting its copies because it no longer hears the revocation
    /// channel (README, "Revocation guarantees"). What no node is told of (a session gone from
    /// Redis unannounced: the revoking node died in between, or Redis lost its data) is trusted
    /// for at most this long. Never longer than half of <see cref="IdleTimeout"/> (see FindAsync).
    /// </summary>
    public TimeSpan LocalCache { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>How often a node publishes its ping on the revocation channel (whether it caches sessions or not: the pings also show the channel is not deaf).</summary>
    internal TimeSpan PingInterval { get; set; } = TimeSpan.FromMilliseconds(100);

    /// <summary>
    /// A node trusts its copies only while the newest ping of its own it heard back was sent less
    /// than this long ago; a revocation waits at most this long for the nodes that do not answer.
    /// </summary>
    internal static readonly TimeSpan HearingLimit = TimeSpan.FromMilliseconds(500);
}

/// <summary>A signed-in session, or (<paramref name="IsAccessToken"/>) a personal access token acting as one.</summary>
public sealed record Session(string Id, long UserId, DateTimeOffset ExpiresAt, bool IsAccessToken = false);

/// <summary>What the session list shows of one session: never the token.</summary>
public sealed record SessionInfo(string Id, DateTimeOffset CreatedAt, DateTimeOffset LastSeenAt, string UserAgent, string Address);

/// <summary>
/// Sessions live in Redis, shared by every node, so a logout is seen by all of them at once.
/// The client holds a 256-bit random token; Redis holds only its SHA-256, so a Redis dump
/// or a MONITOR session yields no usable tokens.
/// </summary>
public sealed class SessionStore : IAsyncDisposable
{
    readonly IConnectionMultiplexer redis;
    readonly RedisCircuit circuit;
    readonly TimeProvider time;
    readonly SessionLifetime options;
    readonly AccessTokenStore tokens;
    readonly ReplicatedWrites writes;
    readonly ILogger<SessionStore> logger;

    public SessionStore(IConnectionMultiplexer redis, RedisCircuit circuit, TimeProvider time, SessionLifetime options, AccessTokenStore tokens, ReplicatedWrites writes, ILogger<SessionStore> logger)
    {
        this.redis = redis;
        this.writes = writes;
        this.circuit = circuit;
        this.time = time;
        this.options = options;
        this.tokens = tokens;
        this.logger = logger;
        goodbye = new(SayGoodbyeAsync);
        // Revocations this node could not write while Redis was away go out first thing.
        redis.ConnectionRestored += (_, _) => _ = RetryPendingAsync();
        // The local cache is only as exact as the revocation announcements this node hears: once
        // a connection fails or comes back (with RESP3 the subscription shares the interactive
        // one), the topology changes, or the subscription moves to another server, nothing
        // confirmed before is trusted, from the first ping of its own heard afterwards.
        redis.ConnectionFailed += (_, _) => StopTrusting();
        redis.ConnectionRestored += (_, _) => StopTrusting();
        redis.ConfigurationChanged += (_, _) => StopTrusting();
    }

    /// <summary>
    /// Subscribes to the revocation channel and starts pinging on it, as a serving node: from then on
    /// the other nodes' revocations wait for this node's acknowledgement (or goodbye). An admin
    /// command never listens: it holds no copies to drop, so no server waits for it, and a process
    /// that dies before serving (a failed start) leaves no node for the others to wait for.
    /// </summary>
    internal void Listen()
    {
        Volatile.Write(ref joined, true);
        _ = ListenAsync();
    }

    bool joined;   // set once Listen is called: only then is there a goodbye to say

    // From when (TimeProvider timestamp) this node hears every revocation announcement; MaxValue
    // until it hears a ping of its own, after a start or a reconnect.
    long listeningSince = long.MaxValue;
    EndPoint? subscribedAt;

    void StopTrusting() => Volatile.Write(ref listeningSince, long.MaxValue);

    async Task ListenAsync()
    {
        try
        {
            while (true)
            {
                try
                {
                    await SubscribeAsync();
                    // Under the lock the goodbye takes: either it waits for this loop, or the loop never starts.
                    lock (lifecycle)
                        if (!stopping.IsCancellationRequested) pinging = PingAsync();
                    return;
                }
                catch (Exception e) when (e is RedisException or TimeoutException)
                {
                }
                await Task.Delay(TimeSpan.FromSeconds(1), stopping.Token);
            }
        }
        catch (Exception e) when (e is ObjectDisposedException or OperationCanceledException)
        {
            // Stopped: the store or its multiplexer is disposed.
        }
    }

    // The queue this node reads the channel through; only pings heard on it count. Swapped, with
    // trust reset, under trustGate, so a ping still coming out of a replaced queue cannot restore
    // trust that the new subscription has not earned.
    ChannelMessageQueue? subscription;
    readonly Lock trustGate = new();

    async Task SubscribeAsync()
    {
        // A subscription that fails leaves its queue registered, unread; so it is tried only on a
        // connected multiplexer, and a failure wipes the channel's registrations (this store is its
        // only subscriber).
        while (!redis.IsConnected) await Task.Delay(200, stopping.Token);
        ChannelMessageQueue queue;
        try
        {
            // One queue, in the order Redis took them: a ping of this node's heard after a
            // revocation means that revocation was handled first.
            queue = await redis.GetSubscriber().SubscribeAsync(RevokedChannel);
        }
        catch (Exception e) when (e is RedisException or TimeoutException)
        {
            redis.GetSubscriber().UnsubscribeAsync(RevokedChannel).IgnoreFailure();
            throw;
        }
        lock (trustGate)
        {
            subscription = queue;
            StopTrusting();
        }
        queue.OnMessage(message => Heard(message.Message.ToString(), queue));
    }

    /// <summary>Each revoked session id this node hears announced (EventHub closes its streams).</summary>
    public event Action<string>? Revoked;

    /// <summary>
    /// The revocation channel went deaf and is subscribed again: announcements made meanwhile were
    /// not heard (EventHub has every stream check its session).
    /// </summary>
    public event Action? AnnouncementsMissed;

    // The revocation channel carries, besides revoked session ids, each node's pings
    // ("ping:<node>:<its Stopwatch timestamp>"), every node's acknowledgement of a revocation
    // ("ack:<node>:<session id>") and the goodbye of a node that stops ("bye:<node>").
    const string PingPrefix = "ping:", AckPrefix = "ack:", ByePrefix = "bye:";
    readonly string nodeId = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8));
    // When (Stopwatch) the newest ping of this node's that came back was sent; 0 before the first.
    long ownPingSent;
    // When (Stopwatch) this node last began to hear its own pings after not trusting its copies.
    long heardSince;
    // The other nodes, by id: when (Stopwatch) their last ping was heard.
    readonly System.Collections.Concurrent.ConcurrentDictionary<string, long> peers = new();
    // Revocations of this node's waiting for the other nodes, by session id.
    readonly System.Collections.Concurrent.ConcurrentDictionary<string, Acknowledgements> awaited = new();

    /// <summary>The revoked session id a message on <see cref="RevokedChannel"/> announces, or null for a ping or acknowledgement (for tests that listen in).</summary>
    internal static string? RevokedSessionOf(string message) =>
        message.StartsWith(PingPrefix, StringComparison.Ordinal) || message.StartsWith(AckPrefix, StringComparison.Ordinal)
        || message.StartsWith(ByePrefix, StringComparison.Ordinal) ? null : message;

    // A margin below HearingLimit, for the revoking node's timer, which may fire a little early.
    static readonly TimeSpan TrustLimit = SessionLifetime.HearingLimit - TimeSpan.FromMilliseconds(50);
    internal bool HearsRevocations => Stopwatch.GetElapsedTime(Volatile.Read(ref ownPingSent)) < TrustLimit;

    void Heard(string message, ChannelMessageQueue from)
    {
        if (message.StartsWith(PingPrefix, StringComparison.Ordinal))
        {
            var parts = message.Split(':');
            if (parts.Length != 3) return;
            if (parts[1] != nodeId) peers[parts[1]] = Stopwatch.GetTimestamp();
            else if (long.TryParse(parts[2], CultureInfo.InvariantCulture, out var sent))
                lock (trustGate)
                {
                    if (!ReferenceEquals(from, subscription)) return;
                    var endpoint = redis.GetSubscriber().SubscribedEndpoint(RevokedChannel);
                    if (!Equals(endpoint, subscribedAt))
                    {
                        subscribedAt = endpoint;
                        StopTrusting();
                    }
                    Volatile.Write(ref ownPingSent, sent);
                    if (Interlocked.CompareExchange(ref listeningSince, time.GetTimestamp(), long.MaxValue) == long.MaxValue)
                        Volatile.Write(ref heardSince, Stopwatch.GetTimestamp());
                }
            return;
        }
        if (message.StartsWith(AckPrefix, StringComparison.Ordinal))
        {
            var parts = message.Split(':', 3);
            if (parts.Length == 3 && awaited.TryGetValue(parts[2], out var waiting)) waiting.Acknowledged(parts[1]);
            return;
        }
        if (message.StartsWith(ByePrefix, StringComparison.Ordinal))
        {
            // A node that stopped serves nothing any more: no revocation waits for it. Its last
            // ping came before its goodbye (one channel, in order), so it is not heard again.
            var departed = message[ByePrefix.Length..];
            peers.TryRemove(departed, out _);
            foreach (var waiting in awaited.Values) waiting.Acknowledged(departed);
            return;
        }
        Forget(message);
        // Nodes gone for good (each start is a new id) are dropped.
        foreach (var (peer, heardAt) in peers)
            if (Stopwatch.GetElapsedTime(heardAt) >= PeerWindow) peers.TryRemove(KeyValuePair.Create(peer, heardAt));
        // This node's own announcement, back: every ping published before it has been heard, so
        // the nodes heard lately are all that can have confirmed the session from their caches;
        // unless this node has not been listening for long enough to have heard each of them (it
        // then waits out HearingLimit).
        if (awaited.TryGetValue(message, out var own) && Volatile.Read(ref listeningSince) != long.MaxValue
            && Stopwatch.GetElapsedTime(Volatile.Read(ref heardSince)) > SessionLifetime.HearingLimit + options.PingInterval)
            own.Expect(peers.Keys);
        _ = redis.GetSubscriber().PublishAsync(RevokedChannel, $"{AckPrefix}{nodeId}:{message}", CommandFlags.FireAndForget);
        try
        {
            Revoked?.Invoke(message);
        }
        catch (Exception e)
        {
            logger.LogError(e, "Closing the streams of a revoked session failed");
        }
    }

    // Longer than HearingLimit: a node that trusts its copies has had a ping heard within it.
    static readonly TimeSpan PeerWindow = TimeSpan.FromSeconds(2);

    // A subscription can go deaf without an error (a channel the server stopped allowing and
    // allows again, a failover that leaves it on the old master). One ping at a time is watched:
    // once Redis has answered it, it (or a later ping) must come back within this long, unless
    // this node's queue is still behind (slow, not deaf); otherwise the channel is subscribed
    // again. A ping Redis has not answered proves nothing (a paused or slow Redis).
    internal static readonly TimeSpan SilenceLimit = TimeSpan.FromSeconds(3);
    long probeSent;      // Stopwatch stamp the watched ping carries; 0 when none is watched
    long probeTakenAt;   // when (Stopwatch) Redis answered the watched ping; 0 not yet

    async Task PingAsync()
    {
        using var timer = new PeriodicTimer(options.PingInterval);
        // Disposing the timer ends the loop: its next wait returns false.
        await using var _ = stopping.Token.Register(timer.Dispose);
        do
        {
            try
            {
                var stamp = Stopwatch.GetTimestamp();
                var ping = redis.GetSubscriber().PublishAsync(RevokedChannel, $"{PingPrefix}{nodeId}:{stamp.ToString(CultureInfo.InvariantCulture)}");
                ping.IgnoreFailure();   // unheard pings are the point: this node stops trusting its copies
                if (Deaf(stamp, ping)) await SubscribeAgainAsync();
            }
            catch (ObjectDisposedException)
            {
                return;
            }
            catch (Exception)
            {
                // A repair that failed (Redis went away meanwhile) is tried again with the next probe.
            }
        } while (await timer.WaitForNextTickAsync());
    }

    readonly CancellationTokenSource stopping = new();
    readonly Lock lifecycle = new();
    Task pinging = Task.CompletedTask;

    /// <summary>
    /// Stops pinging, then says goodbye on the channel, so that the other nodes' revocations stop
    /// waiting for this node's acknowledgement at once rather than for up to
    /// <see cref="SessionLifetime.HearingLimit"/> while its pings are recent (a rolling restart).
    /// <see cref="SessionChannel"/> runs it as the host stops, while the Redis
    /// connections are still open (disposal came after RedisClose had closed them, and every goodbye
    /// went unheard); the container's disposal finds it done.
    /// </summary>
    public ValueTask DisposeAsync() => new(goodbye.Value);

    // One goodbye, which every caller awaits: a second stop of the host (an in-process host is
    // stopped by its test and by Program's own shutdown at once) that found it said and went on at
    // once would have RedisClose close the connections under it.
    readonly Lazy<Task> goodbye;

    async Task SayGoodbyeAsync()
    {
        Task loop;
        lock (lifecycle)
        {
            stopping.Cancel();
            loop = pinging;
        }
        if (!Volatile.Read(ref joined)) return;   // never on the channel: nobody waits for it
        try
        {
            // A ping loop held up in a repair (Redis hung) is not waited for long; a ping of its
            // after the goodbye only has this node waited for as one that died.
            await loop.WaitAsync(TimeSpan.FromSeconds(1));
        }
        catch (TimeoutException)
        {
        }
        try
        {
            await redis.GetSubscriber().PublishAsync(RevokedChannel, $"{ByePrefix}{nodeId}").WaitAsync(TimeSpan.FromSeconds(1));
        }
        catch (Exception e) when (e is RedisException or TimeoutException or ObjectDisposedException)
        {
            // Unheard, the others wait for this node as for one that died: HearingLimit, within PeerWindow.
        }
    }

    /// <summary>Watches <paramref name="ping"/> when no other is watched; whether the watched one proves the channel deaf.</summary>
    bool Deaf(long stamp, Task ping)
    {
        var probe = Volatile.Read(ref probeSent);
        if (probe == 0)
        {
            Volatile.Write(ref probeTakenAt, 0);
            Volatile.Write(ref probeSent, stamp);
            // Only this probe's answer counts: an earlier probe's, arriving late, says nothing of this one.
            _ = ping.ContinueWith(answered =>
            {
                if (!answered.IsCompletedSuccessfully) Interlocked.CompareExchange(ref probeSent, 0, stamp);
                else if (Volatile.Read(ref probeSent) == stamp) Volatile.Write(ref probeTakenAt, Stopwatch.GetTimestamp());
            }, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
            return false;
        }
        if (Volatile.Read(ref ownPingSent) >= probe)
        {
            Volatile.Write(ref probeSent, 0);   // it came back
            return false;
        }
        var taken = Volatile.Read(ref probeTakenAt);
        if (taken == 0 || Stopwatch.GetElapsedTime(taken) <= SilenceLimit) return false;
        if (subscription is { } queue && queue.TryGetCount(out var backlog) && backlog > 0) return false;   // behind, not deaf
        Volatile.Write(ref probeSent, 0);
        return true;
    }

    async Task SubscribeAgainAsync()
    {
        logger.LogWarning("The session revocation channel stopped delivering; subscribing to it again");
        StopTrusting();
        // Every registration of the channel on this multiplexer: this store is its only subscriber.
        await redis.GetSubscriber().UnsubscribeAsync(RevokedChannel);
        await SubscribeAsync();
        AnnouncementsMissed?.Invoke();
    }

    sealed class Acknowledgements
    {
        readonly HashSet<string> acknowledged = [];
        HashSet<string>? expected;
        public readonly TaskCompletionSource Done = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public void Acknowledged(string node)
        {
            lock (acknowledged)
            {
                acknowledged.Add(node);
                Check();
            }
        }

        public void Expect(IEnumerable<string> nodes)
        {
            lock (acknowledged)
            {
                expected ??= [.. nodes];
                Check();
            }
        }

        void Check()
        {
            if (expected is not null && expected.IsSubsetOf(acknowledged)) Done.TrySetResult();
        }
    }

    /// <summary>How long a lookup of a session this node has not seen waits for a reconnecting Redis.</summary>
    public static readonly TimeSpan ReconnectWait = TimeSpan.FromSeconds(2);

    /// <summary>The last-seen time is written at most this often per session.</summary>
    public static readonly TimeSpan LastSeenResolution = TimeSpan.FromMinutes(1);

    /// <summary>Where revoked session ids are announced: every node drops its copy and closes their streams.</summary>
    /// <remarks>
    /// Routed by its name's slot on a Redis Cluster, so every node publishes and subscribes on the
    /// same master and hears the channel in the order that master took it (the local cache relies
    /// on it); a classic channel still reaches nodes subscribed elsewhere through the cluster bus.
    /// </remarks>
    public static readonly RedisChannel RevokedChannel = RedisChannel.Literal(Redis.KeyPrefix + "sessions-revoked").WithKeyRouting();

    const string TokenPrefix = "ams_";

    // Reads the session and slides its idle expiry in one round trip, never past the
    // absolute lifetime stored with it; its metadata (KEYS[2]) follows, and its last-seen time
    // is written when it is older than ARGV[3] ms.
    const string FindAndSlide = """
        local v = redis.call('GET', KEYS[1])
        if not v then return false end
        local sep = string.find(v, '|', 1, true)
        local expires = tonumber(string.sub(v, sep + 1))
        local ttl = math.min(tonumber(ARGV[1]), expires - tonumber(ARGV[2]))
        if ttl <= 0 then
            redis.call('DEL', KEYS[1], KEYS[2])
            return false
        end
        redis.call('PEXPIRE', KEYS[1], ttl)
        local seen = tonumber(redis.call('HGET', KEYS[2], 's') or '0')
        if tonumber(ARGV[2]) - seen >= tonumber(ARGV[3]) then redis.call('HSET', KEYS[2], 's', ARGV[2]) end
        redis.call('PEXPIRE', KEYS[2], ttl)
        return v
        """;

    IDatabase Db => redis.GetDatabase();

    // Sessions this node has recently confirmed in Redis, by id, with when (TimeProvider
    // timestamp): the local cache, and the fallback during a Redis outage (when nobody can log out
    // either), so that sending keeps working. Revocations reach every node's copy through the
    // RevokedChannel subscription.
    readonly System.Collections.Concurrent.ConcurrentDictionary<string, (Session Session, long Confirmed)> recent = new();

    // Neither key's master came short of replicas lately, nor is it known not to answer (a hung
    // shard of a Redis Cluster: a write there would wait out its second, and so would the retry).
    bool Writable(string sessionId, long userId) =>
        writes.MayConfirm(SessionKey(sessionId), IndexKey(userId, sessionId))
        && !circuit.IsOpenFor(SessionKey(sessionId)) && !circuit.IsOpenFor(IndexKey(userId, sessionId));

    /// <summary>A new session; <paramref name="http"/> gives the metadata the session list shows (user agent, address).</summary>
    public async Task<(string Token, Session Session)> CreateAsync(long userId, HttpContext? http = null)
    {
        // A session no replica holds (Redis__Replicas) is not handed out: a failover of its master
        // would lose it, and so would its entry in the user's index, which "sign out everywhere"
        // reads. The session's id picks both keys (IndexKey), so another token lands on other
        // masters: tokens are drawn until neither key's master came short of replicas lately, and a
        // shard missing its replica (just failed over) stops nobody's sign-in.
        for (var attempt = 1; ; attempt++)
        {
            var (token, session) = NewSession(userId);
            for (var draw = 1; draw < 64 && !Writable(session.Id, userId); draw++)
                (token, session) = NewSession(userId);
            bool confirmed;
            try
            {
                confirmed = await writes.WriteAsync(db => WriteSessionAsync(db, session, http), [SessionKey(session.Id), IndexKey(userId, session.Id)], evenIfOpen: attempt > 1);
            }
            catch (Exception e) when (e is RedisException or TimeoutException && e is not ReplicaShortException && attempt < 4 && circuit.IsCluster)
            {
                // On a Redis Cluster one master may hang, or have just been replaced while this
                // node's routes (reloaded now) still name it: another token lands elsewhere.
                _ = DeleteUnconfirmedAsync(session.Id, userId);
                continue;
            }
            if (confirmed)
            {
                _ = AfterSignInAsync(userId, session.Id);
                return (token, session);
            }
            _ = DeleteUnconfirmedAsync(session.Id, userId);
            if (attempt == 4)
                throw NotReplicated("a new session");
        }
    }

    (string Token, Session Session) NewSession(long userId)
    {
        var token = TokenPrefix + Base64Url.EncodeToString(RandomNumberGenerator.GetBytes(32));
        return (token, new Session(IdOf(token), userId, time.GetUtcNow() + options.AbsoluteLifetime));
    }

    static ReplicaShortException NotReplicated(string what) => new($"No Redis replica confirmed {what}");

    async Task DeleteUnconfirmedAsync(string sessionId, long userId)
    {
        try
        {
            await Task.WhenAll(writes.Database.KeyDeleteAsync([SessionKey(sessionId), MetaKey(sessionId)]), writes.Database.SetRemoveAsync(IndexKey(userId, sessionId), sessionId));
        }
        catch (Exception e) when (e is RedisException or TimeoutException)
        {
            // Nobody holds its token; it expires after the idle timeout, and the session list skips it once its key is gone.
        }
    }

    async Task WriteSessionAsync(IDatabase db, Session session, HttpContext? http)
    {
        var (id, userId) = (session.Id, session.UserId);
        var now = time.GetUtcNow();
        var ttl = options.IdleTimeout < options.AbsoluteLifetime ? options.IdleTimeout : options.AbsoluteLifetime;
        var value = $"{userId.ToString(CultureInfo.InvariantCulture)}|{session.ExpiresAt.ToUnixTimeMilliseconds().ToString(CultureInfo.InvariantCulture)}";
        var batch = db.CreateBatch();
        var set = batch.StringSetAsync(SessionKey(id), value, ttl);
        var nowMs = now.ToUnixTimeMilliseconds();
        var meta = batch.HashSetAsync(MetaKey(id),
        [
            new HashEntry("c", nowMs), new HashEntry("s", nowMs),
            new HashEntry("u", http is null ? "" : ClientAddress.UserAgentOf(http)),
            new HashEntry("a", http is null ? "" : ClientAddress.Of(http)),
        ]);
        var metaTtl = batch.KeyExpireAsync(MetaKey(id), ttl);
        batch.Execute();
        await Task.WhenAll(set, meta, metaTtl);
        // Indexed only once the session exists: on a Redis Cluster the two keys live on different
        // masters, and a session list that found the index entry before the key would drop the
        // entry as a session gone, leaving a live session that "revoke others" cannot find.
        await IndexAsync(db, IndexKey(userId, id), id);
    }

    async Task IndexAsync(IDatabase db, RedisKey set, string sessionId)
    {
        var batch = db.CreateBatch();
        var add = batch.SetAddAsync(set, sessionId);
        var ttl = batch.KeyExpireAsync(set, options.AbsoluteLifetime);
        batch.Execute();
        await Task.WhenAll(add, ttl);
    }

    // Off the sign-in's path, best effort. A session that idles out leaves its index entries
    // behind (a revocation or a session list removes them, nothing else), and each sign-in renews
    // the sets' lifetime: a user who signs in daily and never signs out gathered entries without end
    // (an outside soak: 954 for no live session), each one a revocation that "sign out everywhere"
    // then announced and waited for. So a sign-in drops the ended entries of the set it joined.
    // It also indexes the session in the one set releases up to 0.15 read, so that during a rolling
    // upgrade (or after a rollback) their "revoke others" finds it, and tidies that set the same way.
    async Task AfterSignInAsync(long userId, string sessionId)
    {
        try
        {
            await DropEndedAsync(IndexKey(userId, sessionId));
            await IndexAsync(Db, OldIndexKey(userId), sessionId);
            await DropEndedAsync(OldIndexKey(userId));
        }
        catch (Exception e) when (e is RedisException or TimeoutException)
        {
        }
    }

    async Task DropEndedAsync(RedisKey set)
    {
        var ids = await Db.SetMembersAsync(set);
        var batch = Db.CreateBatch();
        var live = ids.Select(id => batch.KeyExistsAsync(SessionKey((string)id!))).ToArray();
        batch.Execute();
        await Task.WhenAll(live);
        var ended = ids.Where((_, i) => !live[i].Result).ToArray();
        if (ended.Length > 0) await Db.SetRemoveAsync(set, ended);
    }

    /// <summary>The session of a session token or of a personal access token, or null.</summary>
    public async Task<Session?> FindAsync(string token)
    {
        if (AccessTokenStore.IsAccessToken(token)) return await tokens.FindAsync(token);
        if (!token.StartsWith(TokenPrefix, StringComparison.Ordinal) || token.Length > 64) return null;
        var id = IdOf(token);
        // A revocation this node made or heard is final (a session id never comes back): no need
        // to ask Redis, which during a failover may not know yet, or not answer.
        if (pending.ContainsKey(id) || revoked.ContainsKey(id)) return null;
        var now = time.GetUtcNow();
        var confirmed = time.GetTimestamp();
        // Trusted for at most half the idle timeout: a use served from the copy does not slide the
        // session in Redis, and the lookup after it must come while the session is still there.
        if (recent.TryGetValue(id, out var known) && known.Confirmed >= Volatile.Read(ref listeningSince)
            && time.GetElapsedTime(known.Confirmed) is var held && held < options.LocalCache && held < options.IdleTimeout / 2
            && known.Session.ExpiresAt > now && HearsRevocations)
            return known.Session;
        Task<RedisResult> Lookup() => circuit.CallAsync(SessionKey(id), db => db.ScriptEvaluateAsync(FindAndSlide,
            [SessionKey(id), MetaKey(id)],
            [(long)options.IdleTimeout.TotalMilliseconds, now.ToUnixTimeMilliseconds(), (long)LastSeenResolution.TotalMilliseconds]));
        RedisResult result;
        try
        {
            result = await Lookup();
        }
        catch (Exception e) when (e is RedisException or TimeoutException)
        {
            if (recent.TryGetValue(id, out var seen) && time.GetElapsedTime(seen.Confirmed) <= options.OutageGrace && seen.Session.ExpiresAt > now)
                return seen.Session;
            // Right after an outage another node may already hand out sessions while this one is
            // still reconnecting (its next attempt is up to a second away): a session this node has
            // not seen waits for the reconnect rather than answering 503.
            if (!await circuit.ReconnectedWithinAsync(SessionKey(id), ReconnectWait)) throw;
            result = await Lookup();
        }
        if (result.IsNull)
        {
            recent.TryRemove(id, out _);
            return null;
        }
        var value = (string)result!;
        var sep = value.IndexOf('|');
        var session = new Session(
            id,
            long.Parse(value.AsSpan(0, sep), CultureInfo.InvariantCulture),
            DateTimeOffset.FromUnixTimeMilliseconds(long.Parse(value.AsSpan(sep + 1), CultureInfo.InvariantCulture)));
        if (recent.Count > 100_000) recent.Clear();
        recent[id] = (session, confirmed);
        // A revocation announced while Redis was still answering this lookup: the answer is stale.
        if (!revoked.ContainsKey(id)) return session;
        recent.TryRemove(id, out _);
        return null;
    }

    // Sessions revoked lately, so that a lookup answered just before the revocation cannot put one
    // back into the cache after the announcement removed it.
    readonly System.Collections.Concurrent.ConcurrentDictionary<string, DateTimeOffset> revoked = new();

    /// <summary>Drops a revoked session from this node's cache and outage fallback.</summary>
    public void Forget(string sessionId)
    {
        var now = time.GetUtcNow();
        revoked[sessionId] = now;
        recent.TryRemove(sessionId, out _);
        if (revoked.Count > 1000)
            foreach (var (id, at) in revoked)
                if (now - at > TimeSpan.FromMinutes(1)) revoked.TryRemove(id, out _);
    }

    /// <summary>
    /// Ends the session on every node. When Redis cannot be reached the revocation is kept on this
    /// node (which refuses the session from then on) and written as soon as Redis answers again;
    /// it never fails, so a logout always completes.
    /// </summary>
    public async Task RevokeAsync(Session session)
    {
        if (session.IsAccessToken) return;   // tokens are revoked through AccessTokenStore
        Forget(session.Id);
        try
        {
            await RevokeInRedisAsync(session.Id, session.UserId);
        }
        catch (Exception e) when (e is RedisException or TimeoutException)
        {
            if (e is not ReplicaShortException && circuit.IsCluster && await RevokedAfterFailoverAsync(session)) return;
            pending[session.Id] = session.UserId;
            // One line per outage, not per session: "revoke all" for a user with many sessions.
            if (Interlocked.Exchange(ref warned, 1) == 0)
                logger.LogWarning("Session revocations not yet in effect everywhere; kept on this node and retried every second ({Error})", Redis.Brief(e));
            StartRetrying();
        }
    }

    // On a Redis Cluster the session's master may be one the cluster has replaced while this node's
    // routes still name it (they are reloaded once a call runs out of time): the other nodes, whose
    // routes are right, would accept the session from the promoted replica. So the revocation is
    // tried again for a while before it is left pending, and its answer still means what it says.
    static readonly TimeSpan ClusterRevocationRetry = TimeSpan.FromSeconds(6);

    async Task<bool> RevokedAfterFailoverAsync(Session session)
    {
        var started = Stopwatch.GetTimestamp();
        while (Stopwatch.GetElapsedTime(started) < ClusterRevocationRetry)
        {
            await Task.Delay(250);
            try
            {
                // Past an open circuit: it may be open for another shard's sake (one per node), and
                // this try is the one way to learn whether the session's master takes it now.
                await RevokeInRedisAsync(session.Id, session.UserId, evenIfOpen: true);
                return true;
            }
            catch (ReplicaShortException)
            {
                return false;   // deleted, but no replica holds it yet: pending, as for any such write
            }
            catch (Exception e) when (e is RedisException or TimeoutException)
            {
            }
        }
        return false;
    }

    /// <summary>Ends the session behind a token (the cookie a new sign-in replaces), if it is one of ours.</summary>
    public async Task RevokeTokenAsync(string token)
    {
        if (!token.StartsWith(TokenPrefix, StringComparison.Ordinal) || token.Length > 64) return;
        var id = IdOf(token);
        long userId = 0;
        try
        {
            var value = (string?)await circuit.CallAsync(SessionKey(id), db => db.StringGetAsync(SessionKey(id)));
            if (value is null) return;
            userId = long.Parse(value.AsSpan(0, value.IndexOf('|')), CultureInfo.InvariantCulture);
        }
        catch (Exception e) when (e is RedisException or TimeoutException)
        {
            if (recent.TryGetValue(id, out var seen)) userId = seen.Session.UserId;
        }
        await RevokeAsync(new Session(id, userId, DateTimeOffset.MinValue));
    }

    /// <summary>Ends one of the user's sessions by its public id; false when the user has no such session.</summary>
    public async Task<bool> RevokeByIdAsync(long userId, string sessionId)
    {
        if (!IsSessionId(sessionId)) return false;
        var indexed = await Task.WhenAll(circuit.CallAsync(IndexKey(userId, sessionId), db => db.SetContainsAsync(IndexKey(userId, sessionId), sessionId)),
            circuit.CallAsync(OldIndexKey(userId), db => db.SetContainsAsync(OldIndexKey(userId), sessionId)));
        if (!indexed.Any(found => found) || !await circuit.CallAsync(SessionKey(sessionId), db => db.KeyExistsAsync(SessionKey(sessionId)))) return false;
        await RevokeAsync(new Session(sessionId, userId, DateTimeOffset.MinValue));
        return true;
    }

    /// <summary>Whether this call took the revocation off the pending ones.</summary>
    async Task<bool> RevokeInRedisAsync(string sessionId, long userId, bool evenIfOpen = false)
    {
        // Only the deletion counts: an index entry left behind (or brought back by a failover) names
        // a session that is gone, which every reader of the index skips. So a master of the user's
        // index that is down, or has no replica, does not hold up the sign-out.
        var replicated = await writes.WriteAsync(db => db.KeyDeleteAsync([SessionKey(sessionId), MetaKey(sessionId)]), [SessionKey(sessionId)], evenIfOpen);
        if (userId > 0) _ = UnindexAsync(userId, sessionId);
        await AnnounceAndWaitAsync(sessionId);
        // Deleted on the master, so refused everywhere now; but until a replica holds the deletion
        // a failover could bring the session back, so this node keeps writing it until one does.
        if (!replicated) throw NotReplicated("the revocation");
        return pending.TryRemove(sessionId, out _);
    }

    async Task UnindexAsync(long userId, string sessionId)
    {
        try
        {
            await Task.WhenAll(Db.SetRemoveAsync(IndexKey(userId, sessionId), sessionId), Db.SetRemoveAsync(OldIndexKey(userId), sessionId));
        }
        catch (Exception e) when (e is RedisException or TimeoutException)
        {
            // A later session list drops it.
        }
    }

    // Revocations made while Redis was unreachable (session id → user id). This node refuses
    // them at once; every node does once they are written.
    readonly System.Collections.Concurrent.ConcurrentDictionary<string, long> pending = new();

    /// <summary>Whether revocations Redis has not taken yet are kept on this node (and retried every second).</summary>
    public bool RevocationsPending => !pending.IsEmpty;
    int retrying, warned, written;

    /// <summary>How many revocations wait for Redis on this node.</summary>
    public int PendingRevocations => pending.Count;

    void StartRetrying()
    {
        if (Interlocked.Exchange(ref retrying, 1) == 1) return;
        _ = Task.Run(async () =>
        {
            try
            {
                while (!pending.IsEmpty)
                {
                    await Task.Delay(TimeSpan.FromSeconds(1));
                    await RetryPendingAsync();
                }
            }
            finally
            {
                Volatile.Write(ref retrying, 0);
                if (!pending.IsEmpty) StartRetrying();
            }
        });
    }

    /// <summary>Writes the revocations that waited for Redis; those that still cannot be written wait on.</summary>
    public async Task RetryPendingAsync()
    {
        foreach (var (id, userId) in pending.ToArray())
        {
            try
            {
                // A reconnect's retry and the loop's may write the same one: counted where it leaves pending.
                if (await RevokeInRedisAsync(id, userId)) Interlocked.Increment(ref written);
            }
            catch (Exception e) when (e is RedisException or TimeoutException)
            {
                return;
            }
        }
        if (pending.IsEmpty && Interlocked.Exchange(ref warned, 0) == 1)
            logger.LogInformation("{Count} session revocations kept on this node are now in effect on every node", Interlocked.Exchange(ref written, 0));
    }

    /// <summary>Whether the session still exists; true while Redis cannot say (an outage is no logout).</summary>
    public async Task<bool> ExistsAsync(string sessionId)
    {
        if (pending.ContainsKey(sessionId)) return false;
        if (AccessTokenStore.IsAccessTokenSessionId(sessionId)) return await tokens.ExistsAsync(sessionId);
        try
        {
            return await circuit.CallAsync(SessionKey(sessionId), db => db.KeyExistsAsync(SessionKey(sessionId)));
        }
        catch (Exception e) when (e is RedisException or TimeoutException)
        {
            return true;
        }
    }

    /// <summary>
    /// Whether the session still exists, asked of Redis itself: for the catch-up after a Redis
    /// outage, when a revocation may have been published unheard. Waits up to about 5 s for Redis
    /// to answer (its connections come back one at a time), and says no if it never does: the
    /// stream then closes and its client resumes with Last-Event-ID after authenticating again.
    /// </summary>
    public async Task<bool> ConfirmAsync(string sessionId, CancellationToken ct)
    {
        for (var attempt = 1; ; attempt++)
        {
            if (pending.ContainsKey(sessionId)) return false;
            if (AccessTokenStore.IsAccessTokenSessionId(sessionId)) return await tokens.ExistsAsync(sessionId);
            try
            {
                return await circuit.CallAsync(SessionKey(sessionId), db => db.KeyExistsAsync(SessionKey(sessionId)));
            }
            catch (Exception e) when (e is RedisException or TimeoutException)
            {
                if (attempt >= 20) return false;
            }
            await Task.Delay(250, ct);
        }
    }

    /// <summary>The user's live sessions, newest first.</summary>
    public async Task<List<SessionInfo>> ListAsync(long userId)
    {
        var ids = (await IndexedIdsAsync(userId)).ToArray();
        var reads = await circuit.CallAsync(async db =>
        {
            var batch = db.CreateBatch();
            var reads = ids.Select(id => (Id: id, Value: batch.StringGetAsync(SessionKey(id)), Meta: batch.HashGetAllAsync(MetaKey(id)))).ToArray();
            batch.Execute();
            await Task.WhenAll(reads.SelectMany(read => new Task[] { read.Value, read.Meta }));
            return reads;
        });
        var list = new List<SessionInfo>();
        var gone = new List<string>();
        foreach (var read in reads)
        {
            var value = (string?)await read.Value;
            if (value is null)
            {
                gone.Add(read.Id);
                continue;
            }
            var meta = (await read.Meta).ToDictionary(e => (string)e.Name!, e => e.Value);
            DateTimeOffset At(string field) => DateTimeOffset.FromUnixTimeMilliseconds(meta.TryGetValue(field, out var v) && v.TryParse(out long ms) ? ms : 0);
            // Sessions made by release 0.15 and earlier have no creation time in their metadata: it is
            // their absolute expiry (kept with the session, "userId|ms") less the absolute lifetime.
            var created = meta.ContainsKey("c") || !long.TryParse(value.AsSpan(value.IndexOf('|') + 1), out var expires)
                ? At("c")
                : DateTimeOffset.FromUnixTimeMilliseconds(expires) - options.AbsoluteLifetime;
            list.Add(new SessionInfo(read.Id, created, meta.ContainsKey("s") ? At("s") : created,
                meta.TryGetValue("u", out var u) ? (string)u! : "", meta.TryGetValue("a", out var a) ? (string)a! : ""));
        }
        await Task.WhenAll(gone.Select(id => UnindexAsync(userId, id)));
        return list.OrderByDescending(s => s.CreatedAt).ThenBy(s => s.Id, StringComparer.Ordinal).ToList();
    }

    // Every node drops its copy and its open event streams of the session close (EventHub
    // listens). Answered once each node heard lately has acknowledged, or after
    // HearingLimit. A node that has not acknowledged by then has heard no ping of its own sent
    // after the announcement (it would have heard the announcement first), so it no longer
    // trusts its copies.
    async Task AnnounceAndWaitAsync(string sessionId)
    {
        var acknowledgements = new Acknowledgements();
        awaited[sessionId] = acknowledgements;
        var deleted = Stopwatch.GetTimestamp();
        try
        {
            // Deleted but not announced, the revocation is not answered: the announcement is
            // retried until it goes out, or until every copy confirmed before the deletion is
            // past LocalCache.
            while (true)
            {
                try
                {
                    await circuit.PublishAsync(RevokedChannel, sessionId);
                    break;
                }
                catch (Exception e) when (e is RedisException or TimeoutException)
                {
                    if (Stopwatch.GetElapsedTime(deleted) >= options.LocalCache) throw;
                    await Task.Delay(100);
                }
            }
            await acknowledgements.Done.Task.WaitAsync(SessionLifetime.HearingLimit).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }
        finally
        {
            awaited.TryRemove(KeyValuePair.Create(sessionId, acknowledgements));
        }
    }

    /// <summary>
    /// Ends every session of the user on every node, optionally sparing one; with
    /// <paramref name="includeTokens"/> the user's personal access tokens too.
    /// </summary>
    public async Task RevokeAllAsync(long userId, string? exceptSessionId = null, bool includeTokens = false)
    {
        var ids = await IndexedIdsAsync(userId);
        // One revocation per session: a Redis Cluster refuses a DEL whose keys live in different slots.
        await Task.WhenAll(ids.Where(id => id != exceptSessionId)
            .Select(id => RevokeAsync(new Session(id, userId, DateTimeOffset.MinValue))));
        // The tokens after the sessions: a token that a session created as they ended was stored before
        // its creator found the session still there (AccessTokens.CreateEndpoint), so it is stored now.
        if (includeTokens) await tokens.RevokeAllAsync(userId);
    }

    /// <summary>A session's public id is the SHA-256 of its token: it names the session, and cannot be used as one.</summary>
    public static bool IsSessionId(string id) => id.Length == 64 && id.All(c => char.IsAsciiDigit(c) || c is >= 'a' and <= 'f');

    static string IdOf(string token) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(token)));
    static string SessionKey(string id) => $"{Redis.KeyPrefix}session:{id}";
    // The session key's whole name as the hash tag puts the metadata in the session's Redis
    // Cluster slot (FindAndSlide touches both), while session keys keep the name they always had.
    static string MetaKey(string id) => $"{Redis.KeyPrefix}session-meta:{{{SessionKey(id)}}}";
    // A user's sessions are indexed in 16 sets, each session in the one its id's first hex digit
    // names: on a Redis Cluster they spread over the masters (see CreateAsync).
    static string IndexKey(long userId, string sessionId) => IndexKey(userId, sessionId[0]);
    static string IndexKey(long userId, char digit) => $"{Redis.KeyPrefix}user-sessions:{userId}:{digit}";
    // The one set of releases up to 0.15. Still read, cleaned and written (best effort) so that
    // nothing escapes "revoke others" while nodes of both releases run, or after a rollback; it can
    // go once no node runs 0.15 and Sessions__AbsoluteLifetime has passed since.
    static string OldIndexKey(long userId) => $"{Redis.KeyPrefix}user-sessions:{userId}";

    /// <summary>
    /// The ids in the user's index (sessions that may have ended since; check their keys). On a
    /// Redis Cluster a set whose master does not answer is read again for up to 10 s (a failover
    /// moves its slots to a replica), then the call fails: "revoke others" must not quietly miss
    /// the sessions indexed there. One Redis has no replica to wait for: the call fails at once.
    /// </summary>
    async Task<HashSet<string>> IndexedIdsAsync(long userId)
    {
        var ids = new HashSet<string>(StringComparer.Ordinal);
        var unread = "0123456789abcdef".Select(digit => (RedisKey)IndexKey(userId, digit)).Append(OldIndexKey(userId)).ToList();
        for (var attempt = 1; ; attempt++)
        {
            // Through the circuit: a hung master costs a second, not the client's 5 s, and trips the
            // circuit, which follows the failover (reloads the topology) until the slots answer again.
            var reads = unread.Select(key => (Key: key, Members: circuit.CallAsync(key, db => db.SetMembersAsync(key)))).ToList();
            var failed = new List<RedisKey>();
            Exception? failure = null;
            foreach (var (key, members) in reads)
            {
                try
                {
                    ids.UnionWith((await members).Select(v => (string)v!));
                }
                catch (Exception e) when (e is RedisException or TimeoutException)
                {
                    failed.Add(key);
                    failure = e;
                }
            }
            if (failure is null) return ids;
            if (attempt == 21 || !circuit.IsCluster) throw failure;
            unread = failed;
            await Task.Delay(500);
        }
    }
}

/// <summary>
/// The node on the revocation channel while the host runs: it listens as the host starts and says
/// goodbye as it stops. Registered after RedisClose, so the host stops it first (hosted services
/// stop in reverse order), with the connections still open.
/// </summary>
sealed class SessionChannel(SessionStore sessions) : IHostedService
{
    public Task StartAsync(CancellationToken ct)
    {
        sessions.Listen();
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken ct) => sessions.DisposeAsync().AsTask();
}
