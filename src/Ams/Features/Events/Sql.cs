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
}
