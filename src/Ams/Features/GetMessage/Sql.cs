using Ams.Infrastructure;
using Ams.Infrastructure.Crypto;
using Ams.Infrastructure.Messaging;
using Dapper;
using MySqlConnector;

namespace Ams.Features.GetMessage;

static class Sql
{
    /// <summary>The message if <paramref name="userId"/> is a member who joined before it was sent; else null.</summary>
    public static async Task<MessageView?> VisibleAsync(MySqlConnection connection, Envelope envelope, long userId, long messageId)
    {
        var rows = (await connection.QueryAsync<MessageRow>($"""
            SELECT {MessageRow.Columns}
            FROM messages m JOIN users u ON u.id = m.sender_id
            JOIN conversation_members cm ON cm.conversation_id = m.conversation_id AND cm.user_id = @userId
            WHERE m.id = @messageId AND m.id > cm.joined_after_message_id
            """, new { userId, messageId }, commandTimeout: connection.CommandTimeout())).ToList();
        return rows.Count == 0 ? null : (await MessageRow.ToViewsAsync(connection, envelope, rows, userId))[0];
    }
}
