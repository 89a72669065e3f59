using Ams.Infrastructure;
using Ams.Features.GetConversation;
using Ams.Infrastructure.Messaging;
using Dapper;
using MySqlConnector;

namespace Ams.Features.AddMember;

static class Sql
{
    public enum Outcome { Added, AlreadyMember, NotFound, NotAGroup, UnknownUser, Full }

    /// <summary>Who was told of an addition (every member, the newcomer included) and their event numbers.</summary>
    public sealed record Told(long[] Recipients, long[] Seqs);

    /// <summary>
    /// Adds the user to a group the caller belongs to. The newcomer's view starts after the
    /// current last message; the conversation row is locked so no message slips in between.
    /// Every member, the newcomer included, gets <c>event: conversation</c> (stored with the change).
    /// </summary>
    public static async Task<(Outcome Outcome, Told? Told)> AddAsync(MySqlConnection connection, long callerId, long conversationId, string username, DateTime now, int maxMembers)
    {
        await using var transaction = await Transaction.BeginAsync(connection);
        var conversation = await connection.QuerySingleOrDefaultAsync<ConversationRow>("""
            SELECT c.kind AS Kind, c.last_message_id AS LastMessageId
            FROM conversations c JOIN conversation_members cm ON cm.conversation_id = c.id AND cm.user_id = @callerId
            WHERE c.id = @conversationId FOR UPDATE
            """, new { callerId, conversationId }, commandTimeout: connection.CommandTimeout());
        if (conversation is null) return (Outcome.NotFound, null);
        var userId = Users.CouldExist(username)
            ? await connection.QuerySingleOrDefaultAsync<long?>("SELECT id FROM users WHERE username = @username", new { username }, commandTimeout: connection.CommandTimeout())
            : null;
        if (userId is null) return (Outcome.UnknownUser, null);
        if (conversation.Kind != Conversations.Group) return (Outcome.NotAGroup, null);
        // The conversation row is locked, so concurrent adds are counted one after another.
        var count = await connection.QuerySingleAsync<CountRow>("""
            SELECT COUNT(*) AS Members, CAST(COALESCE(SUM(user_id = @userId), 0) AS SIGNED) AS Already
            FROM conversation_members WHERE conversation_id = @conversationId
            """, new { conversationId, userId }, commandTimeout: connection.CommandTimeout());
        if (count.Already > 0) return (Outcome.AlreadyMember, null);
        if (count.Members >= maxMembers) return (Outcome.Full, null);
        var added = await connection.ExecuteAsync("""
            INSERT IGNORE INTO conversation_members (conversation_id, user_id, joined_after_message_id, last_read_message_id, joined_at)
            VALUES (@conversationId, @userId, @last, @last, @now)
            """, new { conversationId, userId, last = conversation.LastMessageId, now }, commandTimeout: connection.CommandTimeout());
        if (added != 1)
        {
            await transaction.CommitAsync();
            return (Outcome.AlreadyMember, null);
        }
        var members = (await connection.QueryAsync<long>(
            "SELECT user_id FROM conversation_members WHERE conversation_id = @conversationId ORDER BY user_id",
            new { conversationId }, commandTimeout: connection.CommandTimeout())).ToArray();
        var seqs = await EventLog.AppendAsync(connection, transaction,
            members.Select(m => new NewEvent(m, ConversationEvents.Kind, conversationId, conversationId, callerId)).ToList(), now);
        await transaction.CommitAsync();
        return (Outcome.Added, new Told(members, seqs));
    }

    internal sealed class CountRow
    {
        public long Members { get; set; }
        public long Already { get; set; }
    }

    internal sealed class ConversationRow
    {
        public string Kind { get; set; } = "";
        public long LastMessageId { get; set; }
    }
}
