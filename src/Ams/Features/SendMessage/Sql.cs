using Ams.Infrastructure.Crypto;
using Ams.Infrastructure.Messaging;
using Dapper;
using MySqlConnector;

namespace Ams.Features.SendMessage;

static class Sql
{
    public static Task<long?> FindUserAsync(MySqlConnection connection, string username) =>
        connection.QuerySingleOrDefaultAsync<long?>("SELECT id FROM users WHERE username = @username", new { username });

    public sealed record Stored(long Id, MemberView Sender, long[] Recipients, long[] Seqs, string Entropy);

    /// <summary>
    /// Stores the sealed message, its events for every member, and the conversation's new
    /// activity in one transaction, in five round trips counting BEGIN and COMMIT; null when the sender is not a member.
    /// Locking the conversation row orders its messages' ids with their commits.
    /// </summary>
    public static async Task<Stored?> StoreAsync(MySqlConnection connection, Envelope envelope, long conversationId, long senderId,
        string body, DateTime now)
    {
        await using var transaction = await connection.BeginTransactionAsync();
        // Membership (locking the conversation), the sender, the recipients and the new row, in one
        // batch; a non-member's insert is rolled back with the transaction.
        await using var first = new MySqlCommand("""
            SELECT c.id FROM conversations c JOIN conversation_members cm ON cm.conversation_id = c.id AND cm.user_id = @senderId
            WHERE c.id = @conversationId FOR UPDATE;
            SELECT username, display_name FROM users WHERE id = @senderId;
            SELECT user_id FROM conversation_members WHERE conversation_id = @conversationId ORDER BY user_id;
            INSERT INTO messages (conversation_id, sender_id, body, entropy, sent_at) VALUES (@conversationId, @senderId, '', '', @now);
            SELECT LAST_INSERT_ID();
            """, connection, transaction);
        first.Parameters.AddWithValue("@conversationId", conversationId);
        first.Parameters.AddWithValue("@senderId", senderId);
        first.Parameters.AddWithValue("@now", now);
        bool member;
        MemberView sender;
        var recipients = new List<long>();
        long id;
        await using (var reader = await first.ExecuteReaderAsync())
        {
            member = await reader.ReadAsync();
            await reader.NextResultAsync();
            await reader.ReadAsync();
            sender = new MemberView(reader.GetString(0), reader.GetString(1));
            await reader.NextResultAsync();
            while (await reader.ReadAsync()) recipients.Add(reader.GetInt64(0));
            await reader.NextResultAsync();
            await reader.ReadAsync();
            id = reader.GetInt64(0);
        }
        if (!member)
        {
            await transaction.RollbackAsync();
            return null;
        }
        var (sealedBody, key) = envelope.Seal(System.Text.Encoding.UTF8.GetBytes(body), MessageRow.Purpose,
            MessageRow.SealedFields(id, conversationId, senderId));
        // The data key goes in with the body. Plain MySqlCommand: Dapper.AOT would expand a byte[] parameter as a list.
        await using (var update = new MySqlCommand(Envelope.PendingKey.InsertSql + """
            UPDATE messages SET body = @body, entropy = @entropy WHERE id = @id;
            UPDATE conversations SET last_message_id = @id, last_activity_at = @now WHERE id = @conversationId;
            UPDATE conversation_members SET last_read_message_id = @id WHERE conversation_id = @conversationId AND user_id = @senderId;
            """, connection, transaction))
        {
            key.AddParameters(update);
            update.Parameters.AddWithValue("@body", sealedBody.Blob);
            update.Parameters.AddWithValue("@entropy", sealedBody.Entropy);
            update.Parameters.AddWithValue("@id", id);
            update.Parameters.AddWithValue("@now", now);
            update.Parameters.AddWithValue("@conversationId", conversationId);
            update.Parameters.AddWithValue("@senderId", senderId);
            await update.ExecuteNonQueryAsync();
        }
        var recipientIds = recipients.ToArray();
        var seqs = await EventLog.AppendAsync(connection, transaction, recipientIds, EventKinds.Message, conversationId, id, senderId, now);
        await transaction.CommitAsync();
        return new Stored(id, sender, recipientIds, seqs, sealedBody.Entropy);
    }
}
