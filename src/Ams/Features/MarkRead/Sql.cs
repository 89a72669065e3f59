using Ams.Infrastructure;
using Ams.Infrastructure.Messaging;
using Dapper;
using MySqlConnector;

namespace Ams.Features.MarkRead;

static class Sql
{
    public sealed record Marked(long[] Recipients, long[] Seqs);

    static async Task<long[]> MemberIdsAsync(MySqlConnection connection, long conversationId, Transaction transaction) =>
        (await connection.QueryAsync<long>(
            "SELECT user_id FROM conversation_members WHERE conversation_id = @conversationId ORDER BY user_id",
            new { conversationId }, commandTimeout: connection.CommandTimeout())).ToArray();

    /// <summary>
    /// Moves the reader's mark forward (never back) and records a read event for every member;
    /// no recipients when the mark did not move (nothing is recorded); null when the message is not one the caller can see in that conversation,
    /// and then whether the caller is a member of it at all.
    /// </summary>
    public static async Task<(Marked? Marked, bool Member)> MarkAsync(MySqlConnection connection, long readerId, long conversationId, long upTo, DateTime now)
    {
        await using var transaction = await Transaction.BeginAsync(connection);
        var visible = await connection.QuerySingleOrDefaultAsync<long?>("""
            SELECT m.id FROM messages m
            JOIN conversation_members cm ON cm.conversation_id = m.conversation_id AND cm.user_id = @readerId
            WHERE m.id = @upTo AND m.conversation_id = @conversationId AND m.id > cm.joined_after_message_id
            """, new { readerId, upTo, conversationId }, commandTimeout: connection.CommandTimeout());
        if (visible is null)
            return (null, await connection.ExecuteScalarAsync<long?>(
                "SELECT user_id FROM conversation_members WHERE conversation_id = @conversationId AND user_id = @readerId",
                new { conversationId, readerId }, commandTimeout: connection.CommandTimeout()) is not null);
        var moved = await connection.ExecuteAsync("""
            UPDATE conversation_members SET last_read_message_id = @upTo
            WHERE conversation_id = @conversationId AND user_id = @readerId AND last_read_message_id < @upTo
            """, new { upTo, conversationId, readerId }, commandTimeout: connection.CommandTimeout());
        if (moved == 0)
        {
            await transaction.CommitAsync();
            return (new Marked([], []), true);
        }
        var recipients = await MemberIdsAsync(connection, conversationId, transaction);
        var seqs = await EventLog.AppendAsync(connection, transaction,
            recipients.Select(r => new NewEvent(r, ReadEvents.Kind, conversationId, upTo, readerId)).ToList(), now);
        await transaction.CommitAsync();
        return (new Marked(recipients, seqs), true);
    }
}
