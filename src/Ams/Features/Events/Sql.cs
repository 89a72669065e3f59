using Ams.Infrastructure;
using Ams.Infrastructure.Messaging;
using Dapper;
using MySqlConnector;

namespace Ams.Features.Events;

static class Sql
{
    public const int PageSize = 500;

    internal sealed class EventRow
    {
        public long Seq { get; set; }
        public string Kind { get; set; } = "";
        public long ConversationId { get; set; }
        public long SubjectId { get; set; }
        public long ActorId { get; set; }
    }

    /// <summary>Up to a page of the user's events after <paramref name="afterSeq"/>, in order.</summary>
    public static async Task<List<StoredEvent>> AfterAsync(MySqlConnection connection, long userId, long afterSeq) =>
        (await connection.QueryAsync<EventRow>("""
            SELECT seq AS Seq, kind AS Kind, conversation_id AS ConversationId, subject_id AS SubjectId, actor_id AS ActorId
            FROM events WHERE user_id = @userId AND seq > @afterSeq
            ORDER BY seq LIMIT 500
            """, new { userId, afterSeq }, commandTimeout: connection.CommandTimeout()))
        .Select(r => new StoredEvent(r.Seq, r.Kind, r.ConversationId, r.SubjectId, r.ActorId)).ToList();

    /// <summary>
    /// Of <paramref name="conversationIds"/>, the conversations that exist and the user is no longer
    /// a member of (left or removed): a replay skips their events, as history answers 404 for them.
    /// </summary>
    public static async Task<HashSet<long>> LeftAsync(MySqlConnection connection, long userId, IEnumerable<long> conversationIds)
    {
        var ids = conversationIds.Where(id => id > 0).Distinct().ToList();
        if (ids.Count == 0) return [];
        return (await connection.QueryAsync<long>($"""
            SELECT c.id FROM {Ams.Infrastructure.SqlLists.IdsTable} JOIN conversations c ON c.id = ids.id
            LEFT JOIN conversation_members cm ON cm.conversation_id = c.id AND cm.user_id = @userId
            WHERE cm.user_id IS NULL
            """, new { ids = Ams.Infrastructure.SqlLists.Ids(ids), userId }, commandTimeout: connection.CommandTimeout())).ToHashSet();
    }

    internal sealed class KeptEvents
    {
        public long UserId { get; set; }
        public long Latest { get; set; }
        /// <summary>Null when the user has no stored event.</summary>
        public long? Oldest { get; set; }
        public DateTime? OldestAt { get; set; }
    }

    /// <summary>
    /// The next <paramref name="batch"/> users after <paramref name="afterUserId"/>, each with their
    /// latest event number and their oldest stored event (two primary-key lookups per user).
    /// </summary>
    public static async Task<List<KeptEvents>> KeptAsync(MySqlConnection connection, long afterUserId, int batch) =>
        (await connection.QueryAsync<KeptEvents>("""
            SELECT s.user_id AS UserId, s.seq AS Latest,
                (SELECT e.seq FROM events e WHERE e.user_id = s.user_id ORDER BY e.seq LIMIT 1) AS Oldest,
                (SELECT e.created_at FROM events e WHERE e.user_id = s.user_id ORDER BY e.seq LIMIT 1) AS OldestAt
            FROM user_event_seq s WHERE s.user_id > @afterUserId ORDER BY s.user_id LIMIT @batch
            """, new { afterUserId, batch }, commandTimeout: connection.CommandTimeout())).ToList();

    /// <summary>The number of the user's newest event stored before <paramref name="cutoff"/>, below <paramref name="below"/> (0 for none).</summary>
    public static Task<long> NewestBeforeAsync(MySqlConnection connection, long userId, DateTime cutoff, long below) =>
        connection.QuerySingleAsync<long>(
            "SELECT COALESCE(MAX(seq), 0) FROM events WHERE user_id = @userId AND seq < @below AND created_at < @cutoff",
            new { userId, cutoff, below }, commandTimeout: connection.CommandTimeout());

    public const int DeleteBatch = 1000;

    /// <summary>Deletes up to <see cref="DeleteBatch"/> of the user's events numbered up to <paramref name="upTo"/>, oldest first; how many.</summary>
    public static Task<int> DeleteUpToAsync(MySqlConnection connection, long userId, long upTo) =>
        connection.ExecuteAsync($"DELETE FROM events WHERE user_id = @userId AND seq <= @upTo ORDER BY seq LIMIT {DeleteBatch}",
            new { userId, upTo }, commandTimeout: connection.CommandTimeout());
}
