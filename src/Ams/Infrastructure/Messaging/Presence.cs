using StackExchange.Redis;

namespace Ams.Infrastructure.Messaging;

public sealed class PresenceOptions
{
    /// <summary>How often a node renews the marks of the users with a stream open on it.</summary>
    public TimeSpan Heartbeat { get; set; } = TimeSpan.FromSeconds(10);
    /// <summary>How long a mark lasts unless renewed: a node that dies leaves its users online this long at most.</summary>
    public TimeSpan Ttl { get; set; } = TimeSpan.FromSeconds(35);
}

/// <summary>
/// Who has a live event stream open on any node (api.md <c>members[].online</c>). Each user has a
/// Redis sorted set of the nodes holding a stream of theirs, scored with the mark's expiry time:
/// a node adds its mark when a stream opens, removes it when the user's last stream on it closes,
/// and renews every mark it holds on each heartbeat. A node that dies stops renewing, so its marks
/// lapse after <see cref="PresenceOptions.Ttl"/>; only marks not yet expired count. Best effort:
/// while Redis is down everyone reads as offline and nothing fails. Calls on a request's path go
/// through the <see cref="RedisCircuit"/>: a hung Redis held every inbox, conversation and new
/// stream for the client's 5 s timeout, where a send waited 1 s once and then not at all.
/// </summary>
public sealed class Presence(IConnectionMultiplexer redis, RedisCircuit circuit, EventHub hub, PresenceOptions options, TimeProvider time, ILogger<Presence> logger)
    : BackgroundService
{
    public string NodeId { get; } = Guid.NewGuid().ToString("N");

    /// <summary>Tests: the heartbeat stops (and a stop leaves the marks), as when the node's process dies.</summary>
    internal bool Frozen { get; set; }

    static RedisKey Key(string username) => $"{Redis.KeyPrefix}presence:{username}";

    long Now => time.GetUtcNow().ToUnixTimeMilliseconds();

    public Task ConnectedAsync(string username) => MarkAsync([username], circuit.CallAsync);

    public async Task DisconnectedAsync(long userId, string username)
    {
        if (hub.HasSubscribers(userId)) return;
        try
        {
            // After the response, so off the circuit: skipped while it is open, the mark would show the user online until it lapses.
            await redis.GetDatabase().SortedSetRemoveAsync(Key(username), NodeId);
        }
        catch (Exception e) when (e is RedisException or TimeoutException)
        {
            logger.LogDebug("Presence mark of {Username} not removed ({Message}); it lapses", username, e.Message);
        }
    }

    // The heartbeat's batch (every user with a stream on the node) stays off the circuit: with
    // thousands of users it may run past the circuit's budget and would trip it for every request.
    Task<bool> Uncircuited(Func<IDatabase, Task<bool>> call) => call(redis.GetDatabase());

    async Task MarkAsync(IReadOnlyCollection<string> usernames, Func<Func<IDatabase, Task<bool>>, Task<bool>> run)
    {
        if (usernames.Count == 0) return;
        try
        {
            await run(async db =>
            {
                var expiry = Now + (long)options.Ttl.TotalMilliseconds;
                var batch = db.CreateBatch();
                var writes = new List<Task>(usernames.Count * 3);
                foreach (var username in usernames)
                {
                    writes.Add(batch.SortedSetAddAsync(Key(username), NodeId, expiry));
                    writes.Add(batch.SortedSetRemoveRangeByScoreAsync(Key(username), double.NegativeInfinity, Now));
                    writes.Add(batch.KeyExpireAsync(Key(username), options.Ttl));
                }
                batch.Execute();
                await Task.WhenAll(writes);
                return true;
            });
        }
        catch (Exception e) when (e is RedisException or TimeoutException)
        {
            logger.LogDebug("Presence marks not renewed ({Message})", e.Message);
        }
    }

    /// <summary>Of <paramref name="usernames"/>, those with a stream open on some node now.</summary>
    public async Task<HashSet<string>> OnlineAsync(IEnumerable<string> usernames)
    {
        var names = usernames.Distinct().ToList();
        var online = new HashSet<string>();
        if (names.Count == 0) return online;
        try
        {
            var counts = await circuit.CallAsync(db =>
            {
                var batch = db.CreateBatch();
                var now = Now;
                var lengths = names.Select(n => batch.SortedSetLengthAsync(Key(n), now, double.PositiveInfinity, Exclude.Start)).ToArray();
                batch.Execute();
                return Task.WhenAll(lengths);
            });
            for (var i = 0; i < names.Count; i++)
                if (counts[i] > 0) online.Add(names[i]);
        }
        catch (Exception e) when (e is RedisException or TimeoutException)
        {
            logger.LogDebug("Presence not read ({Message}); members read as offline", e.Message);
        }
        return online;
    }

    /// <summary>The views with each member's <c>online</c> filled in (one Redis round trip).</summary>
    public async Task<List<ConversationView>> ApplyAsync(IReadOnlyList<ConversationView> views)
    {
        var online = await OnlineAsync(views.SelectMany(v => v.Members.Select(m => m.Username)));
        return views.Select(v => v with { Members = v.Members.Select(m => m with { Online = online.Contains(m.Username) }).ToList() }).ToList();
    }

    public async Task<ConversationView> ApplyAsync(ConversationView view) => (await ApplyAsync([view]))[0];

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(options.Heartbeat, time);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
                if (!Frozen) await MarkAsync(hub.Usernames(), Uncircuited);
        }
        catch (OperationCanceledException) { }
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken);
        if (Frozen) return;
        // A clean stop takes this node's marks away at once (its streams are closing).
        try
        {
            var db = redis.GetDatabase();
            await Task.WhenAll(hub.Usernames().Select(u => db.SortedSetRemoveAsync(Key(u), NodeId)));
        }
        catch (Exception e) when (e is RedisException or TimeoutException or ObjectDisposedException)
        {
            logger.LogDebug("Presence marks not removed at stop ({Message}); they lapse", e.Message);
        }
    }
}
