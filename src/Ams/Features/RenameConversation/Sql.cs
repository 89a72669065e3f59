using Ams.Features.GetConversation;
using Ams.Infrastructure;
using Ams.Infrastructure.Messaging;
using MySqlConnector;

namespace Ams.Features.RenameConversation;

static class Sql
{
    public abstract record Outcome;
    public sealed record NotFound : Outcome;
    public sealed record NotAGroup : Outcome;
    public sealed record NotOwner : Outcome;
    public sealed record Renamed(long[] Members, long[] Seqs) : Outcome;

    /// <summary>The owner renames a group they belong to; every member gets <c>event: conversation</c> (stored with the change).</summary>
    public static async Task<Outcome> RenameAsync(MySqlConnection connection, long callerId, long conversationId, string title, DateTime now)
    {
        await using var transaction = await Transaction.BeginAsync(connection);
        if (await LockedConversation.ForUpdateAsync(connection, transaction, callerId, conversationId) is not { } conversation) return new NotFound();
        if (!conversation.IsGroup) return new NotAGroup();
        var ownerId = conversation.OwnerId;
        if (ownerId != callerId) return new NotOwner();
        var members = new List<long>();
        await using (var update = new MySqlCommand { Connection = connection })
        {
            update.Parameters.AddWithValue("@title", title);
            update.Parameters.AddWithValue("@conversationId", conversationId);
            await update.ExecuteEachAsync("UPDATE conversations SET title = @title WHERE id = @conversationId");
            update.CommandText = "SELECT user_id FROM conversation_members WHERE conversation_id = @conversationId ORDER BY user_id";
            await using var reader = await update.ExecuteReaderAsync();
            while (await reader.ReadAsync()) members.Add(reader.GetInt64(0));
        }
        var seqs = await EventLog.AppendAsync(connection, transaction,
            members.Select(m => new NewEvent(m, ConversationEvents.Kind, conversationId, conversationId, callerId)).ToList(), now);
        await transaction.CommitAsync();
        return new Renamed([.. members], seqs);
    }
}
