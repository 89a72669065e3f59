using System.Collections.Concurrent;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Dapper;
using MySqlConnector;
using StackExchange.Redis;

namespace Ams.Infrastructure.Messaging;

/// <summary>
/// What a node publishes after a commit: the kind, the recipients with each one's event number,
/// and the payload as API clients read it, serialized once for every recipient. The slice that
/// owns the kind made the payload and renders it for the browser (<see cref="IEventKind"/>).
/// </summary>
public sealed record LiveEvent(string Kind, long[] UserIds, long[] Seqs, string Payload)
{
    /// <summary>The payload as its kind's type, kept so a node parses it at most once.</summary>
    [JsonIgnore] public object? Parsed { get; set; }
}

/// <summary>An event about to be numbered and stored for one recipient.</summary>
public readonly record struct NewEvent(long UserId, string Kind, long ConversationId, long SubjectId, long ActorId);

/// <summary>
/// Events are written to MariaDB with the change they announce (same transaction), numbered
/// per recipient, and only then published through Redis. MariaDB is the source of truth:
/// a stream that missed a publication (Redis down, client away) replays from the table.
/// </summary>
public sealed class EventLog
{
    readonly RedisCircuit circuit;
    readonly ILogger<EventLog> logger;
    readonly CancellationToken stopping;

    public EventLog(RedisCircuit circuit, ILogger<EventLog> logger, IHostApplicationLifetime lifetime)
    {
        this.circuit = circuit;
        this.logger = logger;
        stopping = lifetime.ApplicationStopping;
        circuit.Answering += () => _ = Task.Run(RepublishAsync);
    }

    /// <summary>
    /// Live events go out on this many sharded pub/sub channels (SPUBLISH, Redis 7): on a Redis
    /// Cluster each channel lives on one shard, so publishing spreads over the masters instead of
    /// every message crossing every node. Every AMS node listens to all of them.
    /// </summary>
    public const int ChannelCount = 16;

    /// <summary>The one classic channel of releases before the sharded ones; only listened to.</summary>
    public static readonly RedisChannel PreviousChannel = RedisChannel.Literal(Redis.KeyPrefix + "events");

    public static readonly RedisChannel[] Channels = Enumerable.Range(0, ChannelCount)
        .Select(i => RedisChannel.Sharded($"{Redis.KeyPrefix}events:{i}")).ToArray();

    /// <summary>
    /// By the lowest recipient id, so one conversation's events keep to one channel and arrive in
    /// order; across channels streams put them back in order (a gap replays from the table).
    /// </summary>
    public static RedisChannel ChannelOf(LiveEvent live) =>
        Channels[live.UserIds.Length == 0 ? 0 : (int)(live.UserIds.Min() % ChannelCount)];

    /// <summary>
    /// The two statements that number and store <paramref name="events"/>, to run inside the
    /// caller's transaction, batched with its own statements. Their one result set (the stored
    /// numbers) is read back with <see cref="ReadSeqsAsync"/>. Parameters are named <c>@ev*</c>.
    /// Only for a connection with autocommit off whose batch is checked before its COMMIT (the
    /// send writer): on Galera a transaction aborted under a multi-statement batch does not stop
    /// it, and the INSERT would run on outside the transaction, numbering from counters whose
    /// increment was rolled back. Everything else uses <see cref="AppendAsync"/>.
    /// </summary>
    public static string Statements(MySqlCommand command, IReadOnlyList<NewEvent> events, DateTime now) =>
        $"{Parameters(command, events, now)};\n{InsertSql}";

    // Driven from the JSON lists with primary-key lookups (a scan would lock every counter it passes).
    const string CountersSql = """
        UPDATE JSON_TABLE(@evCounts, '$[*]' COLUMNS (u BIGINT UNSIGNED PATH '$.u', n INT PATH '$.n')) AS n
            STRAIGHT_JOIN user_event_seq s FORCE INDEX (PRIMARY) ON s.user_id = n.u
            SET s.seq = s.seq + n.n
        """;
    const string InsertSql = """
        INSERT INTO events (user_id, seq, kind, conversation_id, subject_id, actor_id, created_at)
            SELECT STRAIGHT_JOIN e.u, s.seq - e.b, e.k, e.c, e.m, e.a, @evNow
            FROM JSON_TABLE(@evList, '$[*]' COLUMNS (u BIGINT UNSIGNED PATH '$.u', b INT PATH '$.b', k VARCHAR(32) PATH '$.k',
                c BIGINT UNSIGNED PATH '$.c', m BIGINT UNSIGNED PATH '$.m', a BIGINT UNSIGNED PATH '$.a')) AS e
            JOIN user_event_seq s FORCE INDEX (PRIMARY) ON s.user_id = e.u
            RETURNING user_id, seq;
        """;

    /// <summary>Adds the <c>@ev*</c> parameters to <paramref name="command"/>; returns the counters' UPDATE.</summary>
    static string Parameters(MySqlCommand command, IReadOnlyList<NewEvent> events, DateTime now)
    {
        // Each user's counter moves once, by that user's number of events; an event's number is
        // the counter after the move minus how many of that user's events follow it ("back").
        var perUser = new SortedDictionary<long, int>();
        foreach (var e in events) perUser[e.UserId] = perUser.GetValueOrDefault(e.UserId) + 1;
        var seen = new Dictionary<long, int>();
        var list = new StringBuilder("[");
        foreach (var e in events)
        {
            var back = perUser[e.UserId] - 1 - seen.GetValueOrDefault(e.UserId);
            seen[e.UserId] = seen.GetValueOrDefault(e.UserId) + 1;
            list.Append(CultureInfo.InvariantCulture,
                $"{(list.Length > 1 ? "," : "")}{{\"u\":{e.UserId},\"b\":{back},\"k\":{JsonSerializer.Serialize(e.Kind, AppJsonContext.Default.String)},\"c\":{e.ConversationId},\"m\":{e.SubjectId},\"a\":{e.ActorId}}}");
        }
        list.Append(']');
        // Ascending user ids: concurrent transactions lock counter rows in one order, so they never deadlock.
        command.Parameters.AddWithValue("@evCounts", "[" + string.Join(",", perUser.Select(p =>
            string.Create(CultureInfo.InvariantCulture, $"{{\"u\":{p.Key},\"n\":{p.Value}}}"))) + "]");
        command.Parameters.AddWithValue("@evList", list.ToString());
        command.Parameters.AddWithValue("@evNow", now);
        return CountersSql;
    }

    /// <summary>The numbers <see cref="Statements"/> gave, in <paramref name="events"/> order.</summary>
    public static async Task<long[]> ReadSeqsAsync(MySqlDataReader reader, IReadOnlyList<NewEvent> events)
    {
        // A user's events were numbered consecutively in list order, so the highest number returned
        // for a user belongs to that user's last event.
        var latest = new Dictionary<long, long>();
        while (await reader.ReadAsync())
        {
            var (user, seq) = (reader.GetInt64(0), reader.GetInt64(1));
            latest[user] = Math.Max(seq, latest.GetValueOrDefault(user));
        }
        var remaining = new Dictionary<long, int>();
        foreach (var e in events) remaining[e.UserId] = remaining.GetValueOrDefault(e.UserId) + 1;
        var seqs = new long[events.Count];
        for (var i = 0; i < events.Count; i++)
        {
            var left = remaining[events[i].UserId]--;
            seqs[i] = latest[events[i].UserId] - (left - 1);
        }
        return seqs;
    }

    /// <summary>
    /// Numbers and stores events in the caller's transaction, one statement per round trip (a
    /// transaction aborted under the first is reported by the second, which then does not run);
    /// returns the numbers in list order.
    /// </summary>
    public static async Task<long[]> AppendAsync(MySqlConnection connection, Transaction transaction, IReadOnlyList<NewEvent> events, DateTime now)
    {
        await using var command = new MySqlCommand { Connection = connection };
        command.CommandText = Parameters(command, events, now);
        await command.ExecuteNonQueryAsync();
        command.CommandText = InsertSql;
        await using var reader = await command.ExecuteReaderAsync();
        return await ReadSeqsAsync(reader, events);
    }

    /// <summary>The number of the user's latest event (0 before the first): where a stream with nothing to resume starts.</summary>
    public static Task<long> LatestAsync(MySqlConnection connection, long userId) =>
        connection.QuerySingleOrDefaultAsync<long>("SELECT seq FROM user_event_seq WHERE user_id = @userId", new { userId }, commandTimeout: connection.CommandTimeout());

    /// <summary>Each user's latest event number (users without events are left out).</summary>
    public static async Task<Dictionary<long, long>> LatestAsync(MySqlConnection connection, IEnumerable<long> userIds)
    {
        await using var select = new MySqlCommand($"""
            SELECT STRAIGHT_JOIN s.user_id, s.seq FROM {SqlLists.IdsTable}
                JOIN user_event_seq s FORCE INDEX (PRIMARY) ON s.user_id = ids.id
            """, connection);
        select.Parameters.AddWithValue("@ids", SqlLists.Ids(userIds));
        await using var reader = await select.ExecuteReaderAsync();
        var latest = new Dictionary<long, long>();
        while (await reader.ReadAsync()) latest[reader.GetInt64(0)] = reader.GetInt64(1);
        return latest;
    }

    /// <summary>
    /// After the commit. A failure is not the sender's problem: the event is in the table, and it is
    /// published again until Redis takes it (a stream that sees a gap replays from the table).
    /// </summary>
    public async Task PublishAsync(LiveEvent live)
    {
        try
        {
            await circuit.PublishAsync(ChannelOf(live), JsonSerializer.Serialize(live, AppJsonContext.Default.LiveEvent));
        }
        catch (Exception e) when (e is RedisException or TimeoutException)
        {
            // A typing notice (no event number) is worth nothing seconds late, and a stream could
            // not tell a late copy from a new one.
            if (live.Seqs.All(seq => seq == 0)) return;
            // One line when events start to wait and one when they are out (RepublishRoundAsync),
            // not one per send: an outage under load would write thousands.
            if (unpublished.Count >= MaxUnpublished)
            {
                Interlocked.Increment(ref dropped);
                if (Interlocked.Exchange(ref overflowLogged, 1) == 0)
                    logger.LogWarning("Live events not published ({Message}), and {Max} wait already: until they are out, streams replay the next ones from the database at their next catch-up or gap", Redis.Brief(e), MaxUnpublished);
                return;
            }
            unpublished.Enqueue(live);
            if (Interlocked.Exchange(ref waitingLogged, 1) == 0)
                logger.LogWarning("Live {Kind} event not published ({Message}); it and the next ones go out when Redis takes them, and streams replay them from the database", live.Kind, Redis.Brief(e));
            _ = Task.Run(RepublishAsync);
        }
    }

    // Live events Redis did not take while it was away or not answering. Streams skip what they
    // have already written (by event number), so a late or repeated one does no harm.
    const int MaxUnpublished = 10_000;
    readonly ConcurrentQueue<LiveEvent> unpublished = new();
    int republishing;
    int waitingLogged, overflowLogged;
    long republished, dropped;

    // Tried again on this beat until all are out, not only when the circuit closes: a Redis Cluster
    // master that died refuses at once (no timeout trips the circuit), and its slots answer again
    // only when a replica has taken over. An idle stream would otherwise never see its gap.
    static readonly TimeSpan RepublishInterval = TimeSpan.FromMilliseconds(500);

    /// <summary>Publishes the events that waited for Redis, again and again until Redis has taken every one or the node stops.</summary>
    async Task RepublishAsync()
    {
        while (!unpublished.IsEmpty && !stopping.IsCancellationRequested)
        {
            if (Interlocked.Exchange(ref republishing, 1) == 1) return;
            try
            {
                while (await RepublishRoundAsync() > 0) await Task.Delay(RepublishInterval, stopping);
            }
            catch (OperationCanceledException) when (stopping.IsCancellationRequested)
            {
                // The node stops: what still waits is in the table, for the streams to replay.
            }
            catch (Exception e)
            {
                logger.LogError(e, "Publishing the live events that waited for Redis failed; the next one not published tries again");
                return;
            }
            finally
            {
                // A full fence: the emptiness check below must not be read before the flag is down,
                // or an event queued in between would find the loop busy and wait for the next one.
                Interlocked.Exchange(ref republishing, 0);
            }
            // Loops again for one queued after the last round but before the flag came down.
        }
    }

    /// <summary>One try for each waiting event: a channel that refuses keeps the rest of its events for the next round. The number still waiting.</summary>
    async Task<int> RepublishRoundAsync()
    {
        var refused = new HashSet<RedisChannel>();
        var sent = 0;
        for (var n = unpublished.Count; n > 0 && unpublished.TryDequeue(out var live); n--)
        {
            var channel = ChannelOf(live);
            if (!refused.Contains(channel))
            {
                try
                {
                    await circuit.PublishAsync(channel, JsonSerializer.Serialize(live, AppJsonContext.Default.LiveEvent));
                    sent++;
                    continue;
                }
                catch (Exception e) when (e is RedisException or TimeoutException or ObjectDisposedException)
                {
                    refused.Add(channel);
                }
            }
            unpublished.Enqueue(live);
        }
        republished += sent;
        if (unpublished.IsEmpty && republished > 0)
        {
            logger.LogInformation("Published {Count} live events that waited for Redis; {Dropped} more did not fit the queue, and streams replay them from the database",
                republished, Interlocked.Exchange(ref dropped, 0));
            republished = 0;
            Interlocked.Exchange(ref overflowLogged, 0);
            Interlocked.Exchange(ref waitingLogged, 0);
        }
        return unpublished.Count;
    }
}
