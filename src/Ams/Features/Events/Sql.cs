using Ams.Infrastructure.Crypto;
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
        public long MessageId { get; set; }
        public long ActorId { get; set; }
        public string ActorUsername { get; set; } = "";
        public byte[]? Body { get; set; }
        public string? Entropy { get; set; }
        public DateTime? SentAt { get; set; }
        public string ActorDisplayName { get; set; } = "";
    }

    /// <summary>The user's events after <paramref name="afterSeq"/>, in order, as live events addressed to them alone.</summary>
    public static async Task<List<(long Seq, LiveEvent Event)>> AfterAsync(MySqlConnection connection, Envelope envelope, long userId, long afterSeq)
    {
        var rows = await connection.QueryAsync<EventRow>("""
            SELECT e.seq AS Seq, e.kind AS Kind, e.conversation_id AS ConversationId, e.message_id AS MessageId, e.actor_id AS ActorId,
                   a.username AS ActorUsername, a.display_name AS ActorDisplayName, m.body AS Body, m.entropy AS Entropy, m.sent_at AS SentAt
            FROM events e
            JOIN users a ON a.id = e.actor_id
            LEFT JOIN messages m ON e.kind = 'message' AND m.id = e.message_id
            WHERE e.user_id = @userId AND e.seq > @afterSeq
            ORDER BY e.seq LIMIT 500
            """, new { userId, afterSeq });
        var events = new List<(long, LiveEvent)>();
        foreach (var row in rows)
        {
            LiveEvent live = row.Kind == EventKinds.Message
                ? new(row.Kind, [userId], [row.Seq], await new MessageRow
                {
                    Id = row.MessageId, ConversationId = row.ConversationId, SenderId = row.ActorId, Body = row.Body ?? [],
                    Entropy = row.Entropy ?? "", SentAt = row.SentAt ?? default,
                    SenderUsername = row.ActorUsername, SenderDisplayName = row.ActorDisplayName,
                }.ToViewAsync(envelope), null, row.ActorId)
                : new(row.Kind, [userId], [row.Seq], null,
                    new ReadView(Ids.Of(row.ConversationId), row.ActorUsername, Ids.Of(row.MessageId)), row.ActorId);
            events.Add((row.Seq, live));
        }
        return events;
    }
}
