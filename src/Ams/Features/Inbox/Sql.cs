using System.Globalization;
using Ams.Infrastructure;
using Ams.Infrastructure.Crypto;
using Ams.Infrastructure.Messaging;
using Dapper;
using FluentValidation.Results;
using MySqlConnector;

namespace Ams.Features.Inbox;

/// <summary>The inbox query, shared with the browser's conversation list (Chat).</summary>
public static class Sql
{
    public const int DefaultLimit = 50;
    public const int MaxLimit = 200;

    /// <summary>A page's <c>?limit=</c> (1–200, default 50) and <c>?before=</c> (a conversation id), and what is wrong with them.</summary>
    public static (int Limit, long? Before, List<ValidationFailure> Errors) PageOf(IQueryCollection query)
    {
        var errors = new List<ValidationFailure>();
        var limit = DefaultLimit;
        if (query.ContainsKey("limit") && (!int.TryParse(query["limit"].ToString(), NumberStyles.None, CultureInfo.InvariantCulture, out limit)
            || limit is < 1 or > MaxLimit))
            errors.Add(new ValidationFailure("limit", $"limit must be a whole number from 1 to {MaxLimit}."));
        long? before = null;
        if (query.ContainsKey("before"))
        {
            if (Ids.TryParse(query["before"].ToString(), out var id)) before = id;
            else errors.Add(new ValidationFailure("before", "before must be a conversation id."));
        }
        return (limit, before, errors);
    }

    /// <summary>
    /// A page of the caller's inbox, newest activity first: up to <paramref name="limit"/>
    /// conversations that sort after <paramref name="before"/> (keyset paging; the cursor is the id
    /// of the last conversation of the previous page, and only one of the caller's own counts).
    /// </summary>
    /// Null when <paramref name="before"/> names no conversation of the caller's: an empty page
    /// would read as the inbox's end.
    public static async Task<List<ConversationView>?> ListAsync(MySqlConnection connection, Envelope envelope, long userId,
        int limit = DefaultLimit, long? before = null)
    {
        var rows = (await connection.QueryAsync<Conversations.Row>(Conversations.Select + """
             WHERE cm.user_id = @userId
               AND (@before IS NULL OR (c.last_activity_at, c.id) < (
                    SELECT c2.last_activity_at, c2.id FROM conversations c2
                    JOIN conversation_members m2 ON m2.conversation_id = c2.id AND m2.user_id = @userId
                    WHERE c2.id = @before))
             ORDER BY c.last_activity_at DESC, c.id DESC
             LIMIT @limit
            """, new { userId, before, limit }, commandTimeout: connection.CommandTimeout())).ToList();
        if (rows.Count == 0 && before is { } cursor && await connection.ExecuteScalarAsync<long>(
                "SELECT COUNT(*) FROM conversation_members WHERE conversation_id = @cursor AND user_id = @userId",
                new { cursor, userId }, commandTimeout: connection.CommandTimeout()) == 0)
            return null;
        return await Conversations.ViewsAsync(connection, envelope, rows);
    }
}
