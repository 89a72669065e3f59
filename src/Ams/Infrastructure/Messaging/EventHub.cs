using System.Collections.Concurrent;
using System.Diagnostics.CodeAnalysis;
using System.Text.Json;
using System.Threading.Channels;
using MySqlConnector;
using StackExchange.Redis;

namespace Ams.Infrastructure.Messaging;

public enum StreamFormat { Json, Html }

/// <summary>One queued item for a stream: an event for the subscriber, or (no event) one of the node's own notices below.</summary>
public sealed record Outgoing(long Seq, LiveEvent? Event)
{
    /// <summary>Time for a keep-alive comment (the events slice's timer offers it to every stream).</summary>
    public static readonly Outgoing KeepAlive = new(-1, null);

    /// <summary>Replay from the database (after Redis may have dropped publications), the session checked first.</summary>
    public static readonly Outgoing CatchUp = new(0, null);

    /// <summary>A catch-up for a stream that already has every stored event: only its session is checked again.</summary>
    public static readonly Outgoing ConfirmSession = new(-2, null);
}

/// <summary>
/// One open event stream. Its queue is bounded: a client that stops reading does not hold up
/// anyone else; when its queue overflows it is disconnected and catches up with Last-Event-ID.
/// </summary>
public sealed class Subscriber(long userId, string username, string sessionId, StreamFormat format, int capacity = Subscriber.DefaultCapacity)
{
    public const int DefaultCapacity = 1024;
    readonly Channel<Outgoing> queue = Channel.CreateBounded<Outgoing>(new BoundedChannelOptions(capacity) { SingleReader = true });

    public int Capacity { get; } = capacity;

    /// <summary>
    /// Called once when the queue overflows. The stream aborts its connection here, since its
    /// writer may be stuck in a write to the very client that stopped reading.
    /// </summary>
    public Action? OnOverflow { get; set; }

    public long UserId { get; } = userId;
    public string Username { get; } = username;
    public string SessionId { get; } = sessionId;
    public StreamFormat Format { get; } = format;
    public bool Overflowed => Volatile.Read(ref overflowed) == 1;
    int overflowed;

    long delivered;

    /// <summary>
    /// The stream's resume point, as its writer last reported it: every event up to this number
    /// was written, in order (it may lag, never lead). A catch-up skips the database for a stream
    /// that is not behind.
    /// </summary>
    public long Delivered
    {
        get => Volatile.Read(ref delivered);
        set => Volatile.Write(ref delivered, value);
    }
    public ChannelReader<Outgoing> Reader => queue.Reader;

    volatile bool closed;

    public void Offer(Outgoing item)
    {
        // A closed queue (logout, shutdown) refuses the write too; that is no overflow, and the
        // stream's request may be over already (a catch-up offers to the streams it listed first).
        // Offers race (the Redis callback, catch-ups on the thread pool): only the first to find the
        // queue full aborts the stream.
        if (queue.Writer.TryWrite(item) || closed || Interlocked.Exchange(ref overflowed, 1) == 1) return;
        queue.Writer.TryComplete();
        OnOverflow?.Invoke();
    }

    public void Close()
    {
        closed = true;
        queue.Writer.TryComplete();
    }

    int catchUpQueued;   // 0 none, 1 ConfirmSession, 2 CatchUp

    /// <summary>
    /// <see cref="Outgoing.CatchUp"/> or <see cref="Outgoing.ConfirmSession"/>, unless one that does
    /// as much is still queued: the stream reads Redis and MariaDB when it takes that one, which is
    /// after this call, so a second would only repeat it (a Redis reconnect brings up to three
    /// catch-ups within a second, and a stream waiting for its turn to replay would do all three).
    /// </summary>
    public void OfferCatchUp(Outgoing item)
    {
        var level = ReferenceEquals(item, Outgoing.CatchUp) ? 2 : 1;
        int queued;
        do
        {
            queued = Volatile.Read(ref catchUpQueued);
            if (queued >= level) return;
        }
        while (Interlocked.CompareExchange(ref catchUpQueued, level, queued) != queued);
        Offer(item);
    }

    /// <summary>The stream took a catch-up off its queue: the next one is queued again.</summary>
    public void CatchUpTaken() => Volatile.Write(ref catchUpQueued, 0);
}

/// <summary>
/// Fans events out to this node's open streams. One Redis subscription per node (not per
/// connection); each published event is deserialized once per node and its payload, already the API's JSON,
/// goes to every local subscriber as it is.
/// </summary>
public sealed class EventHub : IHostedService
{
    readonly IConnectionMultiplexer redis;
    readonly MariaDb db;
    readonly IHostApplicationLifetime lifetime;
    readonly ILogger<EventHub> logger;
    volatile bool stopping;

    readonly SessionStore sessions;

    readonly RedisCircuit circuit;

    public EventHub(IConnectionMultiplexer redis, RedisCircuit circuit, MariaDb db, SessionStore sessions, IHostApplicationLifetime lifetime, ILogger<EventHub> logger,
        System.Diagnostics.Metrics.IMeterFactory meters)
    {
        (this.redis, this.circuit, this.db, this.sessions, this.lifetime, this.logger) = (redis, circuit, db, sessions, lifetime, logger);
        meters.Create(new System.Diagnostics.Metrics.MeterOptions(AmsMetrics.MeterName)).CreateObservableUpDownCounter("ams.events.streams.open", () => Count, "{stream}",
            "Event streams open on this node.");
    }

    readonly ConcurrentDictionary<long, ConcurrentDictionary<Subscriber, byte>> byUser = new();

    public int Count => byUser.Values.Sum(s => s.Count);

    public bool HasSubscribers(long userId) => byUser.TryGetValue(userId, out var set) && !set.IsEmpty;

    /// <summary>The users with a stream open on this node now.</summary>
    public List<string> Usernames() =>
        byUser.Values.Select(set => set.Keys.FirstOrDefault()?.Username).OfType<string>().Distinct().ToList();

    public Subscriber Register(long userId, string username, string sessionId, StreamFormat format, int capacity = Subscriber.DefaultCapacity)
    {
        var subscriber = new Subscriber(userId, username, sessionId, format, capacity);
        byUser.GetOrAdd(userId, _ => new()).TryAdd(subscriber, 0);
        if (stopping) subscriber.Close();   // registered while the node shuts down: ends at once, like the rest
        return subscriber;
    }

    public void Unregister(Subscriber subscriber)
    {
        if (byUser.TryGetValue(subscriber.UserId, out var set)) set.TryRemove(subscriber, out _);
    }

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        // On shutdown (docker stop, a rolling update) every live stream ends at once, before the server
        // waits for requests to finish: clients resume on another node with Last-Event-ID, and the
        // drain is left to in-flight calls such as sends.
        lifetime.ApplicationStopping.Register(CloseAll);
        var subscriber = redis.GetSubscriber();
        for (var i = 0; i < EventLog.ChannelCount; i++) await SubscribeAsync(i);
        // What nodes of the previous release publish, during a rolling update (see CHANGELOG).
        await subscriber.SubscribeAsync(EventLog.PreviousChannel, (_, payload) => Deliver((string)payload!));
        // The session store owns the revocation channel and keeps it from going deaf.
        sessions.Revoked += CloseSession;
        sessions.AnnouncementsMissed += () => CatchUpAll("the revocation channel was deaf");
        // Publications made while this node was cut off from Redis are lost to pub/sub, not to
        // the event table: every stream replays from there.
        redis.ConnectionRestored += (_, e) =>
        {
            Volatile.Write(ref catchUpOnceHeard, Environment.TickCount64);
            CatchUpAll($"the {e.ConnectionType.ToString().ToLowerInvariant()} connection to Redis is back");
        };
        watching = Task.Run(() => WatchChannelsAsync(watchStop.Token), CancellationToken.None);
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        CloseAll();
        await watchStop.CancelAsync();
        await watching;
    }

    Task SubscribeAsync(int channel)
    {
        Volatile.Write(ref heardAt[channel], Environment.TickCount64);   // a fresh subscription gets a whole silence limit
        return redis.GetSubscriber().SubscribeAsync(EventLog.Channels[channel], (_, payload) => Deliver(channel, payload));
    }

    // A subscription can go deaf without an error: after a failover (Sentinel's or a Redis
    // Cluster's) the client may keep a channel subscribed on the dead master while publications
    // go to the promoted one. So every node publishes its own heartbeat on each channel once a
    // second and listens for it; a channel silent for 3 s while Redis has been taking its heartbeats
    // for as long is subscribed again, and every stream replays what it missed.
    static readonly TimeSpan HeartbeatInterval = TimeSpan.FromSeconds(1);
    static readonly TimeSpan SilenceLimit = TimeSpan.FromSeconds(3);
    const string HeartbeatPrefix = "heartbeat:";
    readonly string heartbeat = HeartbeatPrefix + Guid.NewGuid().ToString("N");
    readonly long[] heardAt = new long[EventLog.ChannelCount];
    readonly long[] takenSince = new long[EventLog.ChannelCount];   // since when Redis takes the channel's heartbeats (0: it does not)
    // The catch-up at a reconnect can come before the subscriptions are in place again on the
    // server, and a send stored after it but published before them reached no stream (seen after a
    // Sentinel failover). The same after a Redis Cluster master dies, with no reconnect at all:
    // the promoted replica takes publications (another node's, waiting since the death) before
    // this node's subscriptions have moved to it. So once every channel has carried this node's own
    // heartbeat again, the streams replay once more. The time of the last reconnect or heartbeat
    // Redis refused; 0 when that replay is done.
    long catchUpOnceHeard;
    readonly CancellationTokenSource watchStop = new();
    Task watching = Task.CompletedTask;

    async Task WatchChannelsAsync(CancellationToken ct)
    {
        var subscriber = redis.GetSubscriber();
        using var timer = new PeriodicTimer(HeartbeatInterval);
        try
        {
            while (await timer.WaitForNextTickAsync(ct))
            {
                var now = Environment.TickCount64;
                // Where events go (RedisCircuit.PublishAsync), not where this node's subscription sits:
                // a subscription left on a replaced master must stop hearing them to count as deaf.
                var sent = EventLog.Channels.Select(channel => circuit.PublishAsync(channel, heartbeat)).ToArray();
                try
                {
                    await Task.WhenAll(sent).WaitAsync(RedisCircuit.Budget, ct);
                }
                catch (Exception e) when (e is RedisException or TimeoutException)
                {
                    // Redis refuses them, at once or in the end (all or one shard's): an outage, which
                    // may have cost other publications too, so it ends with a catch-up below. Merely
                    // slow is not an outage: a replay of every stream on a loaded node would only load it more.
                    foreach (var task in sent)
                        _ = task.ContinueWith(t =>
                        {
                            _ = t.Exception;
                            Volatile.Write(ref catchUpOnceHeard, Environment.TickCount64);
                        }, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
                }
                var deaf = new List<int>();
                for (var i = 0; i < sent.Length; i++)
                {
                    if (!sent[i].IsCompletedSuccessfully) takenSince[i] = 0;
                    else if (takenSince[i] == 0) takenSince[i] = now;
                    else if (now - takenSince[i] > SilenceLimit.TotalMilliseconds && now - Volatile.Read(ref heardAt[i]) > SilenceLimit.TotalMilliseconds)
                        deaf.Add(i);
                }
                var reconnected = Volatile.Read(ref catchUpOnceHeard);
                if (reconnected != 0 && Enumerable.Range(0, heardAt.Length).All(i => Volatile.Read(ref heardAt[i]) > reconnected)
                    && Interlocked.CompareExchange(ref catchUpOnceHeard, 0, reconnected) == reconnected)
                    CatchUpAll("every channel carries this node's heartbeats again");
                if (deaf.Count == 0) continue;
                logger.LogWarning("Live-event channels {Channels} stopped delivering; subscribing to them again", string.Join(",", deaf));
                try
                {
                    foreach (var i in deaf)
                    {
                        await subscriber.UnsubscribeAsync(EventLog.Channels[i]);
                        await SubscribeAsync(i);
                    }
                }
                catch (Exception e) when (e is RedisException or TimeoutException)
                {
                    // Not answering mid-repair: the next ticks find the channel still deaf and try again.
                }
                CatchUpAll("channels were deaf");
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
        }
    }

    void CloseAll()
    {
        stopping = true;
        foreach (var set in byUser.Values)
            foreach (var subscriber in set.Keys) subscriber.Close();
    }

    void Deliver(int channel, RedisValue payload)
    {
        var text = (string)payload!;
        if (text.StartsWith(HeartbeatPrefix, StringComparison.Ordinal))
        {
            if (text == heartbeat) Volatile.Write(ref heardAt[channel], Environment.TickCount64);
            return;
        }
        Deliver(text);
    }

    void Deliver(string payload)
    {
        LiveEvent? live;
        try
        {
            live = JsonSerializer.Deserialize(payload, AppJsonContext.Default.LiveEvent);
        }
        catch (JsonException e)
        {
            logger.LogWarning("Ignoring a malformed live event: {Message}", e.Message);
            return;
        }
        if (live is null) return;
        for (var i = 0; i < live.UserIds.Length; i++)
        {
            if (!byUser.TryGetValue(live.UserIds[i], out var set) || set.IsEmpty) continue;
            foreach (var subscriber in set.Keys)
            {
                subscriber.Offer(new Outgoing(live.Seqs[i], live));
                AmsMetrics.EventsDelivered.Add(1);
            }
        }
    }

    void CloseSession(string sessionId)
    {
        foreach (var set in byUser.Values)
            foreach (var subscriber in set.Keys)
                if (subscriber.SessionId == sessionId) subscriber.Close();
    }

    // Users per query of their latest event numbers at a catch-up.
    const int CatchUpChunk = 1000;
    // How long a catch-up waits for those numbers (every stream's session check waits with it)
    // before it gives up and has every stream replay.
    static readonly TimeSpan CatchUpReadLimit = TimeSpan.FromSeconds(5);

    /// <summary>
    /// After Redis may have dropped publications, every stream on the node catches up. Only those
    /// behind their user's latest stored event replay from MariaDB; the rest only check their
    /// session again (a revocation may have gone unheard too). The latest numbers come in one
    /// query per thousand users, so 10,000 streams cost MariaDB ten queries and a replay for each
    /// stream that missed something, not 10,000 replays at once from a pool of a hundred
    /// connections. When MariaDB cannot say, every stream replays, as before.
    /// </summary>
    /// <param name="reason">Why, for the log: a reconnect is followed by a second catch-up once the channels are heard again.</param>
    void CatchUpAll(string reason) => _ = Task.Run(async () =>
    {
        var streams = byUser.Values.SelectMany(set => set.Keys).ToList();
        var behind = streams.Count;
        try
        {
            // Not cancelled through MySqlConnector, which asks a hung server to kill the query and
            // waits for it: the read is left to finish on its own, its failure observed.
            var read = LatestAsync(db, streams.Select(s => s.UserId).Distinct());
            read.IgnoreFailure();
            var latest = await read.WaitAsync(CatchUpReadLimit, watchStop.Token);
            behind = 0;
            foreach (var stream in streams)
            {
                if (stream.Delivered < latest.GetValueOrDefault(stream.UserId))
                {
                    stream.OfferCatchUp(Outgoing.CatchUp);
                    behind++;
                }
                else stream.OfferCatchUp(Outgoing.ConfirmSession);
            }
        }
        catch (Exception e)
        {
            logger.LogWarning("Could not read the latest event numbers for a catch-up ({Message}); every stream replays", Redis.Brief(e));
            foreach (var stream in streams) stream.OfferCatchUp(Outgoing.CatchUp);
        }
        logger.LogInformation("{Behind} of {Count} streams replay what Redis may not have carried to them ({Reason})", behind, streams.Count, reason);
    });

    internal static async Task<Dictionary<long, long>> LatestAsync(MariaDb db, IEnumerable<long> userIds)
    {
        var latest = new Dictionary<long, long>();
        await using var connection = await db.OpenConnectionAsync();
        foreach (var users in userIds.Chunk(CatchUpChunk))
            foreach (var (user, seq) in await EventLog.LatestAsync(connection, users)) latest[user] = seq;
        return latest;
    }

    /// <summary>A keep-alive to the streams in <paramref name="share"/> of <paramref name="shares"/> (by identity, so each stream is always in the same one).</summary>
    public void OfferKeepAlive(int share, int shares)
    {
        foreach (var set in byUser.Values)
            foreach (var subscriber in set.Keys)
                if ((uint)System.Runtime.CompilerServices.RuntimeHelpers.GetHashCode(subscriber) % (uint)shares == share) subscriber.Offer(Outgoing.KeepAlive);
    }

}

public static class LiveEvents
{
    /// <summary>The event log and this node's hub; the slices register their event kinds.</summary>
    public static IHostApplicationBuilder AddLiveEvents(this IHostApplicationBuilder builder)
    {
        builder.Services.AddSingleton<EventLog>();
        builder.Services.AddSingleton<EventHub>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<EventHub>());
        builder.Services.AddSingleton(builder.Configuration.GetSection("Presence").Get<PresenceOptions>() ?? new());
        builder.Services.AddSingleton<Presence>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<Presence>());
        return builder;
    }

    /// <summary>A slice's event kind: injectable as itself (to publish) and among the kinds streams render and replay.</summary>
    public static IServiceCollection AddEventKind<[DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicConstructors)] TKind>(
        this IServiceCollection services) where TKind : class, IEventKind
    {
        services.AddSingleton<TKind>();
        services.AddSingleton<IEventKind>(sp => sp.GetRequiredService<TKind>());
        return services;
    }
}
