using System.Text.Json;
using Dapper;
using MySqlConnector;
using StackExchange.Redis;

namespace Ams.Infrastructure.Messaging;

public static class EventKinds
{
    public const string Message = "message";
    public const string Read = "read";
}

/// <summary>What a node publishes after a commit: one payload for every recipient, serialized once.</summary>
public sealed record LiveEvent(string Kind, long[] UserIds, long[] Seqs, MessageView? Message, ReadView? Read, long ActorId);

/// <summary>
/// Events are written to MariaDB with the change they announce (same transaction), numbered
/// per recipient, and only then published through Redis. MariaDB is the source of truth:
/// a stream that missed a publication (Redis down, client away) replays from the table.
/// </summary>
public sealed class EventLog(IConnectionMultiplexer redis, ILogger<EventLog> logger)
{
    public static readonly RedisChannel Channel = RedisChannel.Literal(Redis.KeyPrefix + "events");

    /// <summary>
    /// Numbers and stores one event per recipient, in one round trip; returns the sequence
    /// numbers in <paramref name="userIds"/> order.
    /// </summary>
    public static async Task<long[]> AppendAsync(MySqlConnection connection, MySqlTransaction transaction, long[] userIds,
        string kind, long conversationId, long messageId, long actorId, DateTime at)
    {
        // Ascending ids, driven from the list with key lookups (a scan would lock every counter it
        // passes): concurrent transactions lock counter rows in one order, so they never deadlock.
        var ids = SqlLists.Ids(userIds.Distinct().Order());
        var seqs = (await connection.QueryAsync<SeqRow>($"""
            UPDATE {SqlLists.IdsTable} STRAIGHT_JOIN user_event_seq s FORCE INDEX (PRIMARY) ON s.user_id = ids.id SET s.seq = s.seq + 1;
            INSERT INTO events (user_id, seq, kind, conversation_id, message_id, actor_id, created_at)
                SELECT STRAIGHT_JOIN s.user_id, s.seq, @kind, @conversationId, @messageId, @actorId, @at
                FROM {SqlLists.IdsTable} JOIN user_event_seq s FORCE INDEX (PRIMARY) ON s.user_id = ids.id;
            SELECT STRAIGHT_JOIN s.user_id AS UserId, s.seq AS Seq FROM {SqlLists.IdsTable} JOIN user_event_seq s FORCE INDEX (PRIMARY) ON s.user_id = ids.id;
            """, new { ids, kind, conversationId, messageId, actorId, at }, transaction)).ToDictionary(r => r.UserId, r => r.Seq);
        return userIds.Select(u => seqs[u]).ToArray();
    }

    /// <summary>The number of the user's latest event (0 before the first): where a stream with nothing to resume starts.</summary>
    public static Task<long> LatestAsync(MySqlConnection connection, long userId) =>
        connection.QuerySingleOrDefaultAsync<long>("SELECT seq FROM user_event_seq WHERE user_id = @userId", new { userId });

    /// <summary>
    /// After the commit. A failure is not the sender's problem: the event is in the table and every
    /// stream catches up from there when Redis is back.
    /// </summary>
    public async Task PublishAsync(LiveEvent live)
    {
        try
        {
            await redis.GetSubscriber().PublishAsync(Channel, JsonSerializer.Serialize(live, AppJsonContext.Default.LiveEvent));
        }
        catch (Exception e) when (e is RedisException or TimeoutException)
        {
            logger.LogWarning("Live {Kind} event not published ({Message}); streams will replay it from the database", live.Kind, e.Message);
        }
    }

    internal sealed class SeqRow
    {
        public long UserId { get; set; }
        public long Seq { get; set; }
    }
}
