using System.Diagnostics;
using System.Globalization;
using System.Net;
using StackExchange.Redis;

namespace Ams.Infrastructure;

public static class Redis
{
    /// <summary>Every key AMS writes starts with this, so AMS can share a Redis with other apps.</summary>
    public const string KeyPrefix = "ams:";

    /// <summary>
    /// What went wrong, without the client's diagnostics: its messages carry some 700 characters of
    /// them (", inst: 0, qu: 0, … mc: 1/1/0, … IOCP: (…), WORKER: (…)") after the first comma, and
    /// an outside check found a kilobyte in each outage's log line.
    /// </summary>
    public static string Brief(Exception e)
    {
        var message = e.Message;
        if (!Diagnostics.Any(marker => message.Contains(marker, StringComparison.Ordinal))) return message;
        var comma = message.IndexOf(", ", StringComparison.Ordinal);
        return comma > 0 ? message[..comma] : message;
    }

    static readonly string[] Diagnostics = [", inst: ", ", mc: ", "IOCP: ", ", outstanding: "];

    /// <summary>How long a starting node waits for Redis, as for MariaDB (<see cref="Migrations"/>).</summary>
    public static readonly TimeSpan StartupWait = TimeSpan.FromSeconds(30);

    /// <summary>
    /// A node started while Redis is away (restarted during its outage) waits for it, saying so once,
    /// rather than stop at once and stay down after Redis is back. Still away after
    /// <see cref="StartupWait"/>, the start goes on and fails with the client's own word for it.
    /// </summary>
    public static async Task WaitAtStartAsync(IConnectionMultiplexer redis, ILogger logger, CancellationToken ct)
    {
        if (redis.IsConnected) return;
        logger.LogWarning("Redis is not reachable yet; waiting up to {Seconds} s for it", StartupWait.TotalSeconds);
        var waited = Stopwatch.StartNew();
        while (!redis.IsConnected && waited.Elapsed < StartupWait) await Task.Delay(100, ct);
        if (redis.IsConnected) logger.LogInformation("Redis answers after {Seconds:0.0} s", waited.Elapsed.TotalSeconds);
    }

    public static IServiceCollection AddRedis(this IServiceCollection services, IConfiguration config)
    {
        var configuration = config.GetConnectionString("Redis");
        if (string.IsNullOrWhiteSpace(configuration))
            throw new ConfigurationException(
                "ConnectionStrings:Redis is not set. Use `just run` for a local server, or set ConnectionStrings__Redis.");
        var options = ConfigurationOptions.Parse(configuration);
        // Start even when Redis is briefly away; the multiplexer reconnects on its own and
        // /healthz reports the outage meanwhile.
        options.AbortOnConnectFail = false;
        // Also how long a reload of a Redis Cluster's topology waits for a node that hangs: with
        // 5 s a node kept sending a replaced master's slots to it for seconds after the promotion
        // (RedisClusterTests: a sign-in 2 s after it failed; it works now).
        options.ConnectTimeout = 2000;
        options.SyncTimeout = 5000;
        options.AsyncTimeout = 5000;
        // While disconnected, fail at once rather than queue: every caller has a fallback (the
        // session cache, the event table's replay, an open send throttle) or answers 503.
        options.BacklogPolicy = BacklogPolicy.FailFast;
        // Reconnect within about half a second of Redis's return. The client's own policy waits at
        // least ConnectTimeout / 2 (1 s here) between attempts, growing to 10 s in a long outage, and
        // tries only on its heartbeat (1 s): a restarted Redis went unused for 2.5–3 s, while the
        // other nodes already issued sessions this one could not check.
        options.HeartbeatInterval = TimeSpan.FromMilliseconds(500);
        options.ReconnectRetryPolicy = new ExponentialRetry(250, 500);
        if (!string.IsNullOrEmpty(options.ServiceName))
        {
            // Under Sentinel the client follows a failover with blocking calls on pool threads (to
            // the sentinels, and a reconfigure waited for synchronously, retried every second), one
            // set per multiplexer. On two cores the pool (two threads to start with, one more
            // every half second) starved: requests waited ~14 s after a master kill, not ~2 s.
            ThreadPool.GetMinThreads(out var workers, out var io);
            ThreadPool.SetMinThreads(Math.Max(workers, 32), io);
        }
        services.AddSingleton<IConnectionMultiplexer>(_ => ConnectionMultiplexer.Connect(options));
        services.AddSingleton<RedisCircuit>();
        var replication = config.GetSection("Redis").Get<ReplicationOptions>() ?? new();
        if (replication.Replicas < 0 || replication.ReplicaWait <= TimeSpan.Zero || replication.ReplicaWait > TimeSpan.FromSeconds(10))
            throw new ConfigurationException("Redis:Replicas must be 0 or more and Redis:ReplicaWait between 0 and 10 s (for example 00:00:00.100).");
        services.AddSingleton(sp => new ReplicatedWrites(sp.GetRequiredService<IConnectionMultiplexer>(), sp.GetRequiredService<RedisCircuit>(), options, replication, sp.GetRequiredService<ILogger<ReplicatedWrites>>()));
        // Registered before the services that use Redis, so it stops after them.
        services.AddHostedService<RedisClose>();
        return services;
    }
}

/// <summary>
/// Closes the node's Redis connections as it stops, once the services that use them have stopped,
/// without the client's QUIT round. Its own close (disposal) waits up to SyncTimeout (5 s) for each
/// connection's QUIT, one multiplexer after the other: a node whose Redis hung took 5 s to stop,
/// 10 s with Redis__Replicas set, all of docker stop's grace before its SIGKILL. (Its asynchronous
/// close with QUIT failed with a NullReferenceException in StackExchange.Redis 3.4.35, and left
/// the sockets open.)
/// </summary>
sealed class RedisClose(IConnectionMultiplexer shared, ReplicatedWrites writes) : IHostedService
{
    static readonly TimeSpan Limit = TimeSpan.FromSeconds(1);

    public Task StartAsync(CancellationToken ct) => Task.CompletedTask;

    public async Task StopAsync(CancellationToken ct)
    {
        try
        {
            // Once closed, disposal has nothing left to do.
            await Task.WhenAll(shared.CloseAsync(allowCommandsToComplete: false), writes.CloseAsync()).WaitAsync(Limit, ct);
        }
        catch (Exception e) when (e is TimeoutException or OperationCanceledException or RedisException)
        {
        }
    }
}

public sealed class ReplicationOptions
{
    /// <summary>How many replicas of a master must hold a new session or a revocation before AMS answers it; 0 (one Redis, no replicas) does not wait.</summary>
    public int Replicas { get; set; }
    /// <summary>How long a write waits for those replicas before it counts as not written.</summary>
    public TimeSpan ReplicaWait { get; set; } = TimeSpan.FromMilliseconds(100);
}

/// <summary>
/// Redis writes that must outlive their master: a new session, a revocation. Redis replicates
/// asynchronously, so a master that answers a write and dies the next instant may never pass it
/// to the replica that takes over. With <see cref="ReplicationOptions.Replicas"/> set, these writes
/// are followed by WAIT on every master they touched, and count only once that many replicas hold
/// them. WAIT holds the connection it is sent on until the replicas answer, so these writes travel
/// on a multiplexer of their own, never on the one every request shares.
/// </summary>
public sealed class ReplicatedWrites : IDisposable
{
    readonly IConnectionMultiplexer shared;
    readonly RedisCircuit circuit;
    readonly ReplicationOptions replication;
    readonly ILogger<ReplicatedWrites> logger;
    readonly ConnectionMultiplexer? own;
    long reloadedAt;
    // Masters whose replicas last came short of a WAIT, with when (Environment.TickCount64): a
    // master just promoted in a failover has none until its old master returns as one.
    readonly System.Collections.Concurrent.ConcurrentDictionary<System.Net.EndPoint, long> shortOfReplicas = new();
    const long ShortOfReplicasFor = 5_000;

    public ReplicatedWrites(IConnectionMultiplexer shared, RedisCircuit circuit, ConfigurationOptions options, ReplicationOptions replication, ILogger<ReplicatedWrites> logger)
    {
        this.shared = shared;
        this.circuit = circuit;
        this.replication = replication;
        this.logger = logger;
        if (replication.Replicas == 0) return;
        var ownOptions = options.Clone();
        // Writes only: no subscription connection, unless the sentinels' announcements of a new master need one.
        if (string.IsNullOrEmpty(ownOptions.ServiceName)) ownOptions.CommandMap = CommandMap.Create(["SUBSCRIBE"], available: false);
        own = ConnectionMultiplexer.Connect(ownOptions);
    }

    public Task CloseAsync() => own?.CloseAsync(allowCommandsToComplete: false) ?? Task.CompletedTask;

    public void Dispose() => own?.Dispose();

    /// <summary>Where these writes go: a connection of their own when they wait for replicas, else the shared one.</summary>
    public IDatabase Database => own is null ? shared.GetDatabase() : own.GetDatabase();

    /// <summary>
    /// Runs <paramref name="write"/> on <see cref="Database"/>, then answers whether enough
    /// replicas of each master holding <paramref name="keys"/> have it. Throws when the write
    /// itself fails; false when the replicas do not confirm it in time, and the caller writes
    /// again later (or, for a new session, with another key).
    /// </summary>
    public async Task<bool> WriteAsync(Func<IDatabase, Task> write, RedisKey[] keys, bool evenIfOpen = false)
    {
        if (own is null)
        {
            await circuit.CallAsync(keys[0], shared.GetDatabase(), write, evenIfOpen);
            return true;
        }
        try
        {
            // Its routes are its own: a write that ran out of time on a master the cluster has
            // replaced says nothing of the shared connections, so it does not trip the circuit.
            await circuit.CallAsync(keys[0], own.GetDatabase(), write, evenIfOpen, trip: false);
        }
        catch (Exception e) when (e is RedisException or TimeoutException)
        {
            Reload();
            throw;
        }
        var ms = (long)replication.ReplicaWait.TotalMilliseconds;
        try
        {
            var servers = keys.Select(key => own.GetServer(key, flags: CommandFlags.DemandMaster)).DistinctBy(server => server.EndPoint).ToArray();
            var answers = await Task.WhenAll(servers.Select(server => server.ExecuteAsync("WAIT", replication.Replicas, ms)))
                .WaitAsync(replication.ReplicaWait + RedisCircuit.Budget);
            for (var i = 0; i < servers.Length; i++)
                if ((long)answers[i] >= replication.Replicas) shortOfReplicas.TryRemove(servers[i].EndPoint, out _);
                else shortOfReplicas[servers[i].EndPoint] = Environment.TickCount64;
            if (answers.All(held => (long)held >= replication.Replicas)) return true;
            logger.LogWarning("Fewer than {Replicas} replicas confirmed a session write within {Wait} ms", replication.Replicas, ms);
        }
        catch (Exception e) when (e is RedisException or TimeoutException)
        {
            logger.LogWarning("A session write could not be confirmed by Redis ({Error})", Redis.Brief(e));
        }
        Reload();
        return false;
    }

    /// <summary>
    /// False when a master holding one of <paramref name="keys"/> came short of replicas in the
    /// last 5 s, or when these writes' routes name another master for one of them than the shared
    /// connections do: a write that may go to other keys (a new session's) goes elsewhere rather
    /// than wait for a WAIT that will fail again, or for a master the cluster has replaced.
    /// </summary>
    public bool MayConfirm(params RedisKey[] keys)
    {
        if (own is null) return true;
        try
        {
            foreach (var key in keys)
            {
                var master = own.GetServer(key, flags: CommandFlags.DemandMaster).EndPoint;
                if (shortOfReplicas.TryGetValue(master, out var at) && Environment.TickCount64 - at < ShortOfReplicasFor) return false;
                // These routes follow a failover only when a write here fails, the shared ones as
                // soon as the circuit sees it: after a takeover a write here still went to the old,
                // hung master and waited out its second (an outside check: sign-ins of 1–2 s).
                var shared = this.shared.GetServer(key, flags: CommandFlags.DemandMaster).EndPoint;
                if (master.GetType() == shared.GetType() && !master.Equals(shared))
                {
                    Reload();
                    return false;
                }
            }
            return true;
        }
        catch (Exception e) when (e is RedisException or InvalidOperationException)
        {
            return true;   // no master known for a slot: the write finds out
        }
    }

    // A master that died or hung moves its slots to a replica: this multiplexer learns of it by
    // reloading the topology (the shared one does so through RedisCircuit), at most twice a second.
    void Reload()
    {
        var (now, last) = (Environment.TickCount64, Interlocked.Read(ref reloadedAt));
        if (now - last > 500 && Interlocked.CompareExchange(ref reloadedAt, now, last) == last) _ = ReloadAsync();
    }

    async Task ReloadAsync()
    {
        try
        {
            await own!.ConfigureAsync();
        }
        catch (Exception e) when (e is RedisException or TimeoutException)
        {
            // The next failed write tries again.
        }
    }
}

/// <summary>
/// A write Redis took on its master but no replica confirmed in time (<see cref="ReplicatedWrites"/>):
/// Redis answers, yet a failover could lose the write. A 503 that says so (see ProblemResponses).
/// </summary>
public sealed class ReplicaShortException(string message) : RedisException(message);

/// <summary>
/// Bounds the Redis calls on the request path. A Redis that stops answering without closing its
/// connections (paused, swapped out, a network dropping packets) would otherwise hold a request
/// for the client's whole timeout at each call, one after another. A call gets <see cref="Budget"/>;
/// the first one to run out marks the master it went to as not answering, and from then on calls
/// to that master fail at once (so each caller takes its fallback without waiting) until a probe
/// gets a PING answered. On a Redis Cluster that is one shard's master: calls whose keys live on
/// the other shards go on as before, and once a replica has taken over the hung master's slots
/// (and the topology is reloaded) its keys route to a master that is not marked.
/// </summary>
public sealed class RedisCircuit
{
    public static readonly TimeSpan Budget = TimeSpan.FromSeconds(1);
    static readonly TimeSpan ProbeInterval = TimeSpan.FromMilliseconds(250);

    readonly IConnectionMultiplexer redis;
    readonly ILogger<RedisCircuit> logger;
    // The masters not answering, replaced whole under the lock: every call reads it, and it is
    // almost always empty. On a Redis Cluster with the slots each held when it was marked: once
    // the cluster has failed a hung master, the client's own routes no longer name it (a key of
    // its slots goes to another master, which redirects the command to the hung one).
    sealed record Silent(EndPoint Master, SlotRange[]? Slots)
    {
        public bool Holds(int slot) => Slots is null || Slots.Any(range => range.From <= slot && slot <= range.To);
    }
    Silent[] open = [];
    readonly Lock opening = new();

    public RedisCircuit(IConnectionMultiplexer redis, ILogger<RedisCircuit> logger)
    {
        this.redis = redis;
        this.logger = logger;
        channelPrefix = (string?)ConfigurationOptions.Parse(redis.Configuration).ChannelPrefix ?? "";
        redis.ConnectionRestored += (_, e) =>
        {
            Answering?.Invoke();
            if (e.ConnectionType == ConnectionType.Interactive && e.EndPoint is { } endPoint && lostAt.TryRemove(endPoint, out var since))
                logger.LogInformation("The connection to Redis at {EndPoint} is back after {Seconds:F1} s", endPoint, Stopwatch.GetElapsedTime(since).TotalSeconds);
        };
        redis.ConnectionFailed += (_, e) =>
        {
            if (e.ConnectionType != ConnectionType.Interactive || e.EndPoint is not { } endPoint) return;
            // One line for the outage and one when it ends. The client raises this once per loss (a
            // 10 s outage, measured), but keeps the first time should a failed reconnect raise it again.
            if (lostAt.TryAdd(endPoint, Stopwatch.GetTimestamp()))
                logger.LogWarning("The connection to Redis at {EndPoint} is lost ({Failure}); reconnecting. Sends go on, their live events wait for it",
                    endPoint, e.FailureType);
            if (redis.GetServer(endPoint).ServerType == ServerType.Cluster)
                _ = Task.Run(() => FollowFailoverAsync(() => redis.GetServer(endPoint).IsConnected));
        };
    }

    // Since when (Stopwatch) each endpoint's connection has been lost; a Redis Cluster has one per node.
    readonly System.Collections.Concurrent.ConcurrentDictionary<EndPoint, long> lostAt = new();

    // When a Redis Cluster master dies, a replica takes over its slots, but the client keeps
    // sending their commands to the dead node until it reloads the cluster's topology (by itself
    // only at its next periodic check). So the topology is reloaded every half second until the
    // node is back or the failover had time to finish. A paused master (hung, its connections
    // open) shows only as calls running out of time: each trip of the circuit reloads it too.
    static readonly TimeSpan FailoverWatch = TimeSpan.FromSeconds(30);
    int followingFailover;

    /// <summary>Whether Redis is a Redis Cluster, whose failovers move slots from a master to its replica.</summary>
    public bool IsCluster => redis.GetEndPoints().Any(e => redis.GetServer(e).ServerType == ServerType.Cluster);

    async Task FollowFailoverAsync(Func<bool> settled)
    {
        if (Interlocked.Exchange(ref followingFailover, 1) == 1) return;
        try
        {
            var until = DateTime.UtcNow + FailoverWatch;
            while (DateTime.UtcNow < until && !settled())
            {
                await Task.Delay(ProbeInterval * 2);
                try
                {
                    await redis.ConfigureAsync();
                }
                catch (Exception e) when (e is RedisException or TimeoutException)
                {
                    // The whole cluster is away: try again at the next turn.
                }
            }
        }
        finally
        {
            Volatile.Write(ref followingFailover, 0);
        }
    }

    /// <summary>
    /// Whether Redis answers, for the readiness check. On a Redis Cluster any master will do: a
    /// hung one is the whole cluster's trouble, not this node's (and the keyless PING would go
    /// to whichever master the client picks, a replaced one included, long after its failover).
    /// </summary>
    public async Task PingAsync(CancellationToken ct)
    {
        if (!IsCluster)
        {
            // As any call: refused at once while Redis is known not to answer, and within the budget
            // otherwise (a load balancer's check gives up after a second: it should hear the 503).
            await CallAsync(db => db.PingAsync()).WaitAsync(ct);
            return;
        }
        var pings = Masters().Select(server => server.PingAsync()).ToList();
        if (pings.Count == 0) throw NotAnswering(null);
        while (true)
        {
            var answered = await Task.WhenAny(pings).WaitAsync(ct);
            if (answered.IsCompletedSuccessfully) return;
            pings.Remove(answered);
            if (pings.Count == 0) await answered;   // every master failed: the last one's error
        }
    }

    /// <summary>Redis answers again: after a reconnect, or a probe answered after calls ran out of time.</summary>
    public event Action? Answering;

    /// <summary>Whether some master of Redis is known not to answer right now.</summary>
    public bool IsOpen => Volatile.Read(ref open).Length > 0;

    /// <summary>Whether the master holding <paramref name="key"/> is known not to answer right now.</summary>
    public bool IsOpenFor(RedisKey key) => MarkedFor(key) is not null;

    Silent? MarkedFor(RedisKey key)
    {
        var marked = Volatile.Read(ref open);
        if (marked.Length == 0) return null;
        var slot = redis.HashSlot(key);
        return marked.FirstOrDefault(silent => silent.Holds(slot));
    }

    EndPoint? MasterOf(RedisKey key)
    {
        try
        {
            return redis.GetServer(key, flags: CommandFlags.DemandMaster).EndPoint;
        }
        catch (Exception e) when (e is RedisException or InvalidOperationException)
        {
            return null;   // no master known for its slot (or no connection at all): the call finds out
        }
    }

    // The cluster as the client last read it, from the server whose view is the newest: a view is
    // kept per server from its last reload, and some are older than a failover since (in one, a
    // master promoted since held no slots, and its hang marked nothing).
    ClusterConfiguration? ClusterView() => redis.GetEndPoints().Select(endPoint => redis.GetServer(endPoint).ClusterConfiguration)
        .OfType<ClusterConfiguration>().MaxBy(view => view.Nodes.Select(ConfigEpoch).DefaultIfEmpty(-1).Max());

    // A master's config epoch (CLUSTER NODES, seventh field): a failover gives the promoted replica
    // one above every other, so of two claims on a slot the one with the higher epoch holds it.
    static long ConfigEpoch(ClusterNode node) =>
        node.Raw.Split(' ') is { Length: > 6 } fields && long.TryParse(fields[6], CultureInfo.InvariantCulture, out var epoch) ? epoch : -1;

    /// <summary>A call for <paramref name="key"/> (its master is the one that must answer).</summary>
    public Task<T> CallAsync<T>(RedisKey key, Func<IDatabase, Task<T>> call) => CallAsync(key, redis.GetDatabase(), call);

    public Task CallAsync(RedisKey key, Func<IDatabase, Task> call) => CallAsync(key, redis.GetDatabase(), call);

    /// <summary>
    /// A call for <paramref name="key"/> on another multiplexer's connections to the same Redis
    /// (see <see cref="ReplicatedWrites"/>); <paramref name="evenIfOpen"/>: made (within the budget)
    /// while its master is marked too, for a caller whose retries are how it finds out.
    /// </summary>
    public Task<T> CallAsync<T>(RedisKey key, IDatabase database, Func<IDatabase, Task<T>> call, bool evenIfOpen = false, bool trip = true)
    {
        if (!evenIfOpen && MarkedFor(key) is { } silent) return Task.FromException<T>(NotAnswering(silent.Master));
        // The master the call goes to, named before it goes: after its timeout the client may have
        // reloaded its routes, and the key's master then is the replica promoted meanwhile.
        return trip ? WithinBudgetAsync(database, call, MasterOf(key), redis.HashSlot(key)) : WithinBudgetAsync(database, call, master: null);
    }

    public Task CallAsync(RedisKey key, IDatabase database, Func<IDatabase, Task> call, bool evenIfOpen = false, bool trip = true) =>
        CallAsync(key, database, async db =>
        {
            await call(db);
            return true;
        }, evenIfOpen, trip);

    /// <summary>
    /// A call over keys on several masters (a batch of reads): it fails at once while any master is
    /// marked. One that runs out of time marks the master of a single Redis, and on a Redis Cluster
    /// every master that does not answer a PING either.
    /// </summary>
    public Task<T> CallAsync<T>(Func<IDatabase, Task<T>> call) => Volatile.Read(ref open) is [var silent, ..]
        ? Task.FromException<T>(NotAnswering(silent.Master))
        : WithinBudgetAsync(redis.GetDatabase(), call, master: null, keyless: true);

    public Task CallAsync(Func<IDatabase, Task> call) => CallAsync(async db =>
    {
        await call(db);
        return true;
    });

    async Task<T> WithinBudgetAsync<T>(IDatabase database, Func<IDatabase, Task<T>> call, EndPoint? master, int? slot = null, bool keyless = false)
    {
        try
        {
            return await call(database).WaitAsync(Budget);
        }
        catch (TimeoutException)
        {
            if (!keyless) Trip(master, slot);
            else if (IsCluster) _ = Task.Run(TripSilentMastersAsync);
            else Trip(master = Masters().FirstOrDefault()?.EndPoint);
            throw NotAnswering(master);
        }
    }

    /// <summary>
    /// For a node whose connection to Redis is down: waits up to <paramref name="limit"/> for it
    /// to come back. For a master that is connected but was not answering (marked): waits one
    /// probe interval, in which the probe's pending PING clears the mark if the master answers
    /// again (a Redis just resumed from a pause, whose other clients already hand out sessions).
    /// False after the wait: a request for a master still hung gets its 503 a quarter second late.
    /// </summary>
    public async Task<bool> ReconnectedWithinAsync(RedisKey key, TimeSpan limit)
    {
        if (redis.IsConnected)
        {
            if (!IsOpenFor(key)) return false;
            var answering = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            void OnAnswering() => answering.TrySetResult();
            Answering += OnAnswering;
            try
            {
                var until = Stopwatch.GetTimestamp() + (long)(ProbeInterval.TotalSeconds * Stopwatch.Frequency);
                while (IsOpenFor(key))
                {
                    var left = until - Stopwatch.GetTimestamp();
                    if (left <= 0) return false;
                    await Task.WhenAny(answering.Task, Task.Delay(TimeSpan.FromSeconds((double)left / Stopwatch.Frequency)));
                    answering = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                }
                return true;
            }
            finally
            {
                Answering -= OnAnswering;
            }
        }
        var back = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        void OnRestored(object? sender, ConnectionFailedEventArgs e)
        {
            if (e.ConnectionType == ConnectionType.Interactive) back.TrySetResult();
        }
        redis.ConnectionRestored += OnRestored;
        try
        {
            if (redis.IsConnected) return true;   // restored between the first look and the subscription
            return await Task.WhenAny(back.Task, Task.Delay(limit)) == back.Task;
        }
        finally
        {
            redis.ConnectionRestored -= OnRestored;
        }
    }

    /// <summary>
    /// A PUBLISH (SPUBLISH for a sharded channel), sent to the master of the channel's slot as a
    /// key's command is. The client's own publish goes to the server holding this node's
    /// subscription to the channel instead: after a Redis Cluster takeover, the hung old master
    /// until a topology reload moves the subscription, and that reload waits out the connect
    /// timeout (2 s) for the hung node. The circuit, following the slot, blamed the promoted
    /// replica, whose PING answers, so each publish meanwhile waited its whole second (an outside
    /// check: one node's sends took 1–2 s each for ~2 s after a takeover).
    /// </summary>
    public Task PublishAsync(RedisChannel channel, RedisValue message)
    {
        RedisKey name = channelPrefix + (string)channel!;
        return CallAsync(name, db => db.ExecuteAsync(channel.IsSharded ? "SPUBLISH" : "PUBLISH", [name, message]));
    }

    // What the client puts before every channel it subscribes to (channelPrefix= in the
    // connection string), which a publish sent as a command must put there too.
    readonly string channelPrefix;

    IEnumerable<IServer> Masters() => redis.GetEndPoints().Select(endPoint => redis.GetServer(endPoint)).Where(server => server.IsConnected && !server.IsReplica);

    async Task TripSilentMastersAsync()
    {
        var masters = Masters().ToList();
        var pings = masters.Select(server => server.PingAsync().WaitAsync(Budget)).ToList();
        for (var i = 0; i < masters.Count; i++)
            try
            {
                await pings[i];
            }
            catch (TimeoutException)
            {
                Trip(masters[i].EndPoint);
            }
            catch (RedisException)
            {
                // Refused or disconnected: calls fail at once there without the circuit.
            }
    }

    // On a cluster with the slots the master holds in the newest view, and the slot of the call's
    // key: the client's routes sent it there, whatever a view says.
    void Trip(EndPoint? master, int? slot = null)
    {
        if (master is null) return;
        var cluster = IsCluster;
        SlotRange[]? slots = null;
        if (cluster)
        {
            var held = ClusterView()?[master]?.Slots ?? [];
            slots = slot is { } own ? [.. held, new SlotRange(own, own)] : [.. held];
            if (slots.Length == 0) return;   // not a master of any slot (any more): nothing routes there
        }
        lock (opening)
        {
            if (open.Any(silent => silent.Master.Equals(master))) return;
            open = [.. open, new Silent(master, slots)];
        }
        logger.LogWarning("Redis at {Master} did not answer within {Budget} ms; calls to it fail fast until it answers a PING", master, Budget.TotalMilliseconds);
        _ = Task.Run(() => ProbeAsync(master, slots));
        if (cluster) _ = Task.Run(() => FollowFailoverAsync(() => !Volatile.Read(ref open).Any(silent => silent.Master.Equals(master))));
    }

    // A replica took over the slots: keys route to it now, whether or not the old master answers.
    // Each server's view is its own last answer to a reload (FollowFailoverAsync), and some are
    // older than an earlier failover: they name, alive, a master the slots have left since (an
    // outside check saw a mark cleared on such a view 0.9 s before the real election). So the
    // claim counts only with an epoch above any the hung master was seen with: an election gives
    // the replica it promotes one above every other.
    bool Replaced(EndPoint master, SlotRange[] slots)
    {
        var views = redis.GetEndPoints().Select(endPoint => redis.GetServer(endPoint).ClusterConfiguration).OfType<ClusterConfiguration>().ToList();
        var hung = views.Select(view => view[master]).OfType<ClusterNode>().Select(ConfigEpoch).DefaultIfEmpty(-1).Max();
        var owner = views.Select(view => view.GetBySlot(slots[0].From)).OfType<ClusterNode>().MaxBy(ConfigEpoch);
        return owner is { IsFail: false, IsPossiblyFail: false, EndPoint: { } endPoint } && !endPoint.Equals(master) && ConfigEpoch(owner) > hung;
    }

    async Task ProbeAsync(EndPoint master, SlotRange[]? slots)
    {
        var trippedAt = Stopwatch.GetTimestamp();
        string? cleared = null;
        // One PING at a time, left to the client's own timeout: a hung master answers it as soon as
        // it resumes, and the look at the slots' owner goes on every turn meanwhile. A cluster's
        // master that never answers again has had its slots taken over within FailoverWatch, or
        // has no replica to take them: then a call to it marks it again after its second.
        Task? ping = null;
        while (cleared is null && !(slots is not null && Stopwatch.GetElapsedTime(trippedAt) > FailoverWatch))
        {
            var turn = Task.Delay(ProbeInterval);
            ping ??= redis.GetServer(master).PingAsync();
            await Task.WhenAny(ping, turn);
            if (ping.IsCompletedSuccessfully) cleared = "it answers again";
            else if (slots is not null && Replaced(master, slots)) cleared = "a replica took over its slots";
            // Under Sentinel the client follows a failover to the new master on its own.
            else if (slots is null && Masters().Any(server => !server.EndPoint.Equals(master))) cleared = "another master took over";
            else
            {
                if (ping.IsCompleted)
                {
                    _ = ping.Exception;   // refused (and so observed): the next turn asks again
                    ping = null;
                }
                await turn;
            }
        }
        _ = ping?.ContinueWith(unanswered => unanswered.Exception, TaskScheduler.Default);
        lock (opening) open = [.. open.Where(silent => !silent.Master.Equals(master))];
        var seconds = Stopwatch.GetElapsedTime(trippedAt).TotalSeconds;
        if (cleared is null)
        {
            logger.LogWarning("Redis at {Master} has not answered for {Seconds:F0} s; calls to it are tried again", master, seconds);
            return;
        }
        logger.LogInformation("Redis at {Master}: {Cleared}; calls go through (they failed fast for {Seconds:F1} s)", master, cleared, seconds);
        Answering?.Invoke();
    }

    // Named, so the outage's log line says which master (on a cluster, the rest answer).
    static RedisConnectionException NotAnswering(EndPoint? master) =>
        new(ConnectionFailureType.SocketFailure, CommandFlags.None, master is null ? "Redis is not answering" : $"Redis at {master} is not answering", null, CommandStatus.Unknown);
}
