using System.Text;
using Ams.Infrastructure;
using Ams.Infrastructure.Crypto;
using Ams.Infrastructure.Messaging;
using MySqlConnector;

namespace Ams.Features.EditMessage;

static class Sql
{
    public abstract record Outcome;
    public sealed record NotFound : Outcome;
    public sealed record NotSender : Outcome;
    public sealed record Deleted : Outcome;
    public sealed record Edited(long ConversationId, long[] Members, long[] Seqs, byte[]? OldKey) : Outcome;

    /// <summary>
    /// In one transaction: the message locked (as a member who can see it), the new body sealed
    /// under a new data key, the old body's data key deleted (the old text is then unreadable in
    /// any backup taken afterwards, as for a delete), <c>edited_at</c> set, and a
    /// <c>message.edited</c> event stored for every member.
    /// </summary>
    public static async Task<Outcome> EditAsync(MySqlConnection connection, Envelope envelope, long userId, long messageId, string body, DateTime now)
    {
        await using var transaction = await Transaction.BeginAsync(connection);
        if (await LockedMessage.ForUpdateAsync(connection, transaction, userId, messageId) is not { } message) return new NotFound();
        if (message.SenderId != userId) return new NotSender();
        if (message.Deleted) return new Deleted();
        var (conversationId, oldBody) = (message.ConversationId, message.Body);

        var members = new List<long>();
        // A locking read: a removal committing meanwhile is waited for (and its member left out),
        // and one not yet begun waits for this edit.
        await using (var read = new MySqlCommand(
            "SELECT user_id FROM conversation_members WHERE conversation_id = @conversationId ORDER BY user_id LOCK IN SHARE MODE", connection))
        {
            read.Parameters.AddWithValue("@conversationId", conversationId);
            await using var reader = await read.ExecuteReaderAsync();
            while (await reader.ReadAsync()) members.Add(reader.GetInt64(0));
        }

        var (sealedBody, key) = envelope.Seal(Encoding.UTF8.GetBytes(body), MessageRow.Purpose, MessageRow.SealedFields(messageId, conversationId, message.SenderId));
        var oldKey = Envelope.KeyIdOf(oldBody);
        await using (var update = new MySqlCommand { Connection = connection })
        {
            key.AddParameters(update);
            // Plain MySqlCommand parameters: Dapper.AOT would expand a byte[] parameter as a list.
            update.Parameters.AddWithValue("@oldKey", oldKey ?? []);
            update.Parameters.AddWithValue("@body", sealedBody.Blob);
            update.Parameters.AddWithValue("@entropy", sealedBody.Entropy);
            update.Parameters.AddWithValue("@now", now);
            update.Parameters.AddWithValue("@id", messageId);
            await update.ExecuteEachAsync(Envelope.PendingKey.InsertSql,
                "DELETE FROM data_keys WHERE id = @oldKey",
                "UPDATE messages SET body = @body, entropy = @entropy, edited_at = @now WHERE id = @id");
        }
        var events = members.Select(m => new NewEvent(m, EditedEvents.Kind, conversationId, messageId, userId)).ToList();
        var seqs = await EventLog.AppendAsync(connection, transaction, events, now);
        await transaction.CommitAsync();
        return new Edited(conversationId, [.. members], seqs, oldKey);
    }
}
