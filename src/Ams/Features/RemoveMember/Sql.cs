using Ams.Infrastructure;
using Ams.Features.GetConversation;
using Ams.Infrastructure.Messaging;
using MySqlConnector;

namespace Ams.Features.RemoveMember;

static class Sql
{
    public abstract record Outcome;
    public sealed record NotFound : Outcome;
    public sealed record NotAGroup : Outcome;
    public sealed record NotOwner : Outcome;
    public sealed record NotAMember : Outcome;
    public sealed record Removed(long[] Recipients, long[] Seqs) : Outcome;

    /// <summary>
    /// Takes <paramref name="username"/> out of a group the caller belongs to: themselves (leave) or,
    /// for the owner, anyone. The conversation row is locked first, as a send locks it, so a message
    /// is either stored before the removal (and reaches the member) or after it (and does not).
    /// An owner who leaves hands the group to the longest-standing member left (earliest joined,
    /// then the lowest user id); the last member leaving leaves it ownerless and empty. The remaining
    /// members and the one who left get <c>event: conversation</c>, stored with the change.
    /// </summary>
    public static async Task<Outcome> RemoveAsync(MySqlConnection connection, long callerId, long conversationId, string username, DateTime now)
    {
        await using var transaction = await Transaction.BeginAsync(connection);
        if (await LockedConversation.ForUpdateAsync(connection, transaction, callerId, conversationId) is not { } conversation) return new NotFound();
        if (!conversation.IsGroup) return new NotAGroup();
        var ownerId = conversation.OwnerId;
        long? targetId = null;
        if (Users.CouldExist(username))
        await using (var target = new MySqlCommand("""
            SELECT u.id FROM users u JOIN conversation_members cm ON cm.user_id = u.id AND cm.conversation_id = @conversationId
            WHERE u.username = @username
            """, connection))
        {
            target.Parameters.AddWithValue("@conversationId", conversationId);
            target.Parameters.AddWithValue("@username", username);
            if (await target.ExecuteScalarAsync() is { } found and not DBNull) targetId = Convert.ToInt64(found, System.Globalization.CultureInfo.InvariantCulture);
        }
        // Removing someone else is the owner's alone, whoever it names.
        if (targetId != callerId && ownerId != callerId) return new NotOwner();
        if (targetId is not { } removed) return new NotAMember();

        var remaining = new List<long>();
        await using (var delete = new MySqlCommand { Connection = connection })
        {
            delete.Parameters.AddWithValue("@conversationId", conversationId);
            delete.Parameters.AddWithValue("@removed", removed);
            await delete.ExecuteEachAsync(
                "DELETE FROM conversation_members WHERE conversation_id = @conversationId AND user_id = @removed",
                """
                UPDATE conversations SET owner_id = (
                    SELECT cm.user_id FROM conversation_members cm WHERE cm.conversation_id = @conversationId
                    ORDER BY cm.joined_at, cm.user_id LIMIT 1)
                WHERE id = @conversationId AND owner_id = @removed
                """);
            delete.CommandText = "SELECT user_id FROM conversation_members WHERE conversation_id = @conversationId ORDER BY user_id";
            await using var reader = await delete.ExecuteReaderAsync();
            while (await reader.ReadAsync()) remaining.Add(reader.GetInt64(0));
        }
        long[] recipients = [.. remaining.Append(removed).Order()];
        var seqs = await EventLog.AppendAsync(connection, transaction,
            recipients.Select(r => new NewEvent(r, ConversationEvents.Kind, conversationId, conversationId, callerId)).ToList(), now);
        await transaction.CommitAsync();
        return new Removed(recipients, seqs);
    }
}
