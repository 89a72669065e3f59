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
            """, new { userId, afterSeq }))
        .Select(r => new StoredEvent(r.Seq, r.Kind, r.ConversationId, r.SubjectId, r.ActorId)).ToList();
}
