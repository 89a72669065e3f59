using Ams.Infrastructure.Crypto;
using Ams.Infrastructure.Messaging;
using Dapper;
using MySqlConnector;

namespace Ams.Features.SendMessage;

static class Sql
{
    public static Task<long?> FindUserAsync(MySqlConnection connection, string username) =>
        connection.QuerySingleOrDefaultAsync<long?>("SELECT id FROM users WHERE username = @username", new { username });

    public sealed record Stored(MessageRow Row, long[] Recipients, long[] Seqs, string Entropy);

    /// <summary>
    /// Stores the sealed message, its events for every member, and the conversation's new
    /// activity in one transaction; null when the sender is not a member. Locking the
    /// conversation row orders its messages' ids with their commits.
    /// </summary>
    public static async Task<Stored?> StoreAsync(MySqlConnection connection, Envelope envelope, long conversationId, long senderId,
        string body, DateTime now)
    {
        await using var transaction = await connection.BeginTransactionAsync();
        var member = await connection.QuerySingleOrDefaultAsync<long?>("""
            SELECT c.id FROM conversations c JOIN conversation_members cm ON cm.conversation_id = c.id AND cm.user_id = @senderId
            WHERE c.id = @conversationId FOR UPDATE
            """, new { conversationId, senderId }, transaction);
        if (member is null) return null;
        var recipients = await Conversations.MemberIdsAsync(connection, conversationId, transaction);
        var id = await connection.ExecuteScalarAsync<long>("""
            INSERT INTO messages (conversation_id, sender_id, body, entropy, sent_at) VALUES (@conversationId, @senderId, '', '', @now);
            SELECT LAST_INSERT_ID();
            """, new { conversationId, senderId, now }, transaction);
        var sealedBody = await envelope.SealStringAsync(body, MessageRow.Purpose, MessageRow.SealedFields(id, conversationId, senderId),
            connection, transaction);
        // Plain MySqlCommand: Dapper.AOT would expand a byte[] parameter as a list.
        await using (var update = new MySqlCommand("UPDATE messages SET body = @body, entropy = @entropy WHERE id = @id", connection, transaction))
        {
            update.Parameters.AddWithValue("@body", sealedBody.Blob);
            update.Parameters.AddWithValue("@entropy", sealedBody.Entropy);
            update.Parameters.AddWithValue("@id", id);
            await update.ExecuteNonQueryAsync();
        }
        await connection.ExecuteAsync("""
            UPDATE conversations SET last_message_id = @id, last_activity_at = @now WHERE id = @conversationId;
            UPDATE conversation_members SET last_read_message_id = @id WHERE conversation_id = @conversationId AND user_id = @senderId;
            """, new { id, now, conversationId, senderId }, transaction);
        var seqs = await EventLog.AppendAsync(connection, transaction, recipients, EventKinds.Message, conversationId, id, senderId, now);
        await transaction.CommitAsync();
        return new Stored(new MessageRow { Id = id, ConversationId = conversationId, SenderId = senderId, Body = sealedBody.Blob,
            Entropy = sealedBody.Entropy, SentAt = now }, recipients, seqs, sealedBody.Entropy);
    }
}
