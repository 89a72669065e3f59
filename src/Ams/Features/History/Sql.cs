using Ams.Infrastructure;
using Ams.Infrastructure.Crypto;
using Ams.Infrastructure.Messaging;
using Dapper;
using MySqlConnector;

namespace Ams.Features.History;

static class Sql
{
    /// <summary>
    /// The caller's view of a conversation before a message, oldest to newest, and whether older
    /// messages remain in it; null for a non-member.
    /// </summary>
    public static async Task<(List<MessageView> Messages, bool More)?> PageAsync(MySqlConnection connection, Envelope envelope,
        long userId, long conversationId, long before, int limit)
    {
        if (await JoinedAfterAsync(connection, userId, conversationId) is not { } joinedAfter) return null;
        var rows = await BeforeAsync(connection, conversationId, joinedAfter, before, limit);
        var page = rows.Take(limit).Reverse().ToList();
        return (await MessageRow.ToViewsAsync(connection, envelope, page, userId), rows.Count > limit);
    }

    /// <summary>The caller's membership: where their view starts, or null for a non-member.</summary>
    static Task<long?> JoinedAfterAsync(MySqlConnection connection, long userId, long conversationId) =>
        connection.QuerySingleOrDefaultAsync<long?>(
            "SELECT joined_after_message_id FROM conversation_members WHERE conversation_id = @conversationId AND user_id = @userId",
            new { conversationId, userId }, commandTimeout: connection.CommandTimeout());

    /// <summary>
    /// Up to <paramref name="limit"/> + 1 messages before <paramref name="before"/>, newest first,
    /// never older than the reader's joining point (the extra one says whether there is more).
    /// </summary>
    static async Task<List<MessageRow>> BeforeAsync(MySqlConnection connection, long conversationId, long joinedAfter, long before, int limit) =>
        (await connection.QueryAsync<MessageRow>($"""
            SELECT {MessageRow.Columns}
            FROM messages m JOIN users u ON u.id = m.sender_id
            WHERE m.conversation_id = @conversationId AND m.id > @joinedAfter AND m.id < @before
            ORDER BY m.id DESC LIMIT @take
            """, new { conversationId, joinedAfter, before, take = limit + 1 }, commandTimeout: connection.CommandTimeout())).ToList();
}
