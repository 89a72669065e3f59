using MySqlConnector;

namespace Ams.Infrastructure.Messaging;

/// <summary>A message row locked for a change by its sender (edit, delete).</summary>
public sealed record LockedMessage(long ConversationId, long SenderId, byte[] Body, bool Deleted)
{
    /// <summary>
    /// Locks the message <paramref name="messageId"/> if <paramref name="userId"/> is a member who
    /// can see it (joined before it was sent); null otherwise, which callers answer with 404.
    /// </summary>
    public static async Task<LockedMessage?> ForUpdateAsync(MySqlConnection connection, Transaction transaction, long userId, long messageId)
    {
        await using var find = new MySqlCommand("""
            SELECT m.conversation_id, m.sender_id, m.body, m.deleted_at IS NOT NULL FROM messages m
            JOIN conversation_members cm ON cm.conversation_id = m.conversation_id AND cm.user_id = @userId
            WHERE m.id = @id AND m.id > cm.joined_after_message_id
            FOR UPDATE
            """, connection);
        find.Parameters.AddWithValue("@id", messageId);
        find.Parameters.AddWithValue("@userId", userId);
        await using var reader = await find.ExecuteReaderAsync();
        if (!await reader.ReadAsync()) return null;
        return new LockedMessage(reader.GetInt64(0), reader.GetInt64(1), (byte[])reader.GetValue(2), reader.GetBoolean(3));
    }
}
