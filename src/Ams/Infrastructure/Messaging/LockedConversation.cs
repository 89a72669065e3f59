using MySqlConnector;

namespace Ams.Infrastructure.Messaging;

/// <summary>A conversation row locked for a change to the group itself (rename, member removal).</summary>
public sealed record LockedConversation(bool IsGroup, long? OwnerId)
{
    /// <summary>
    /// Locks the conversation if <paramref name="callerId"/> is a member, as a send locks it, so a
    /// message is stored either before the change or after it; null otherwise (callers answer 404).
    /// </summary>
    public static async Task<LockedConversation?> ForUpdateAsync(MySqlConnection connection, Transaction transaction, long callerId, long conversationId)
    {
        await using var find = new MySqlCommand("""
            SELECT c.kind = 'group', c.owner_id FROM conversations c
            JOIN conversation_members cm ON cm.conversation_id = c.id AND cm.user_id = @callerId
            WHERE c.id = @conversationId FOR UPDATE
            """, connection);
        find.Parameters.AddWithValue("@callerId", callerId);
        find.Parameters.AddWithValue("@conversationId", conversationId);
        await using var reader = await find.ExecuteReaderAsync();
        if (!await reader.ReadAsync()) return null;
        return new LockedConversation(reader.GetBoolean(0), reader.IsDBNull(1) ? null : reader.GetInt64(1));
    }
}
