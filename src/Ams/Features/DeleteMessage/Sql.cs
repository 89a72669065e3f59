using Ams.Infrastructure;
using Ams.Infrastructure.Crypto;
using Ams.Infrastructure.Files;
using Ams.Infrastructure.Messaging;
using MySqlConnector;

namespace Ams.Features.DeleteMessage;

static class Sql
{
    public abstract record Outcome;
    public sealed record NotFound : Outcome;
    public sealed record NotSender : Outcome;
    public sealed record AlreadyDeleted : Outcome;
    public sealed record Deleted(long ConversationId, long[] Members, long[] Seqs, long[] Attachments, List<byte[]> Keys) : Outcome;

    /// <summary>
    /// In one transaction: the message locked (as a member who can see it), its body's data key
    /// and its attachments' keys and rows deleted (crypto-shredding), the body emptied, the
    /// tombstone marked, and a <c>message.deleted</c> event stored for every member.
    /// </summary>
    public static async Task<Outcome> DeleteAsync(MySqlConnection connection, long userId, long messageId, DateTime now)
    {
        await using var transaction = await connection.BeginTransactionAsync();
        long conversationId, senderId;
        byte[] body;
        bool deleted;
        await using (var find = new MySqlCommand("""
            SELECT m.conversation_id, m.sender_id, m.body, m.deleted_at IS NOT NULL FROM messages m
            JOIN conversation_members cm ON cm.conversation_id = m.conversation_id AND cm.user_id = @userId
            WHERE m.id = @id AND m.id > cm.joined_after_message_id
            FOR UPDATE
            """, connection, transaction))
        {
            find.Parameters.AddWithValue("@id", messageId);
            find.Parameters.AddWithValue("@userId", userId);
            await using var reader = await find.ExecuteReaderAsync();
            if (!await reader.ReadAsync()) return new NotFound();
            (conversationId, senderId, body, deleted) = (reader.GetInt64(0), reader.GetInt64(1), (byte[])reader.GetValue(2), reader.GetBoolean(3));
        }
        if (senderId != userId) return new NotSender();
        if (deleted) return new AlreadyDeleted();

        var attachments = new List<long>();
        var members = new List<long>();
        await using (var read = new MySqlCommand("""
            SELECT id FROM attachments WHERE message_id = @id;
            SELECT user_id FROM conversation_members WHERE conversation_id = @conversationId ORDER BY user_id;
            """, connection, transaction))
        {
            read.Parameters.AddWithValue("@id", messageId);
            read.Parameters.AddWithValue("@conversationId", conversationId);
            await using var reader = await read.ExecuteReaderAsync();
            while (await reader.ReadAsync()) attachments.Add(reader.GetInt64(0));
            await reader.NextResultAsync();
            while (await reader.ReadAsync()) members.Add(reader.GetInt64(0));
        }
        var keys = await AttachmentQueries.DestroyAsync(connection, transaction, attachments);
        await using (var tombstone = new MySqlCommand("""
            DELETE FROM data_keys WHERE id = @bodyKey;
            UPDATE messages SET body = '', deleted_at = @now WHERE id = @id;
            """, connection, transaction))
        {
            var bodyKey = Envelope.KeyIdOf(body) ?? [];
            if (bodyKey.Length > 0) keys.Add(bodyKey);
            tombstone.Parameters.AddWithValue("@bodyKey", bodyKey);
            tombstone.Parameters.AddWithValue("@id", messageId);
            tombstone.Parameters.AddWithValue("@now", now);
            await tombstone.ExecuteNonQueryAsync();
        }
        var events = members.Select(m => new NewEvent(m, DeletedEvents.Kind, conversationId, messageId, userId)).ToList();
        var seqs = await EventLog.AppendAsync(connection, transaction, events, now);
        await transaction.CommitAsync();
        return new Deleted(conversationId, [.. members], seqs, [.. attachments], keys);
    }
}
