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
    /// tombstone marked, its reactions and their changes deleted, and a <c>message.deleted</c>
    /// event stored for every member.
    /// </summary>
    public static async Task<Outcome> DeleteAsync(MySqlConnection connection, long userId, long messageId, DateTime now)
    {
        await using var transaction = await Transaction.BeginAsync(connection);
        if (await LockedMessage.ForUpdateAsync(connection, transaction, userId, messageId) is not { } message) return new NotFound();
        if (message.SenderId != userId) return new NotSender();
        if (message.Deleted) return new AlreadyDeleted();
        var (conversationId, body) = (message.ConversationId, message.Body);

        var attachments = new List<long>();
        var members = new List<long>();
        // One statement per round trip (see Database.ExecuteEachAsync).
        await using (var read = new MySqlCommand("SELECT id FROM attachments WHERE message_id = @id", connection))
        {
            read.Parameters.AddWithValue("@id", messageId);
            read.Parameters.AddWithValue("@conversationId", conversationId);
            await using (var reader = await read.ExecuteReaderAsync())
                while (await reader.ReadAsync()) attachments.Add(reader.GetInt64(0));
            read.CommandText = "SELECT user_id FROM conversation_members WHERE conversation_id = @conversationId ORDER BY user_id";
            await using (var reader = await read.ExecuteReaderAsync())
                while (await reader.ReadAsync()) members.Add(reader.GetInt64(0));
        }
        var keys = await AttachmentQueries.DestroyAsync(connection, attachments);
        await using (var tombstone = new MySqlCommand { Connection = connection })
        {
            var bodyKey = Envelope.KeyIdOf(body) ?? [];
            if (bodyKey.Length > 0) keys.Add(bodyKey);
            tombstone.Parameters.AddWithValue("@bodyKey", bodyKey);
            tombstone.Parameters.AddWithValue("@id", messageId);
            tombstone.Parameters.AddWithValue("@now", now);
            await tombstone.ExecuteEachAsync(
                "DELETE FROM data_keys WHERE id = @bodyKey",
                "UPDATE messages SET body = '', deleted_at = @now WHERE id = @id",
                // A tombstone has no reactions: who reacted, and how, goes with the message.
                "DELETE FROM reactions WHERE message_id = @id",
                "DELETE FROM reaction_changes WHERE message_id = @id");
        }
        var events = members.Select(m => new NewEvent(m, DeletedEvents.Kind, conversationId, messageId, userId)).ToList();
        var seqs = await EventLog.AppendAsync(connection, transaction, events, now);
        await transaction.CommitAsync();
        return new Deleted(conversationId, [.. members], seqs, [.. attachments], keys);
    }
}
