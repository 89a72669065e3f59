using Ams.Infrastructure.Crypto;
using Dapper;
using MySqlConnector;

namespace Ams.Infrastructure.Messaging;

/// <summary>
/// Reads conversations as a member sees them. Every query joins on the caller's membership,
/// so a non-member gets nothing back (the slices answer 404, never 403).
/// </summary>
public static class Conversations
{
    public const string Direct = "direct";
    public const string Group = "group";
    public static readonly IReadOnlyList<string> Kinds = [Direct, Group];

    public sealed class Row
    {
        public long Id { get; set; }
        public long UserId { get; set; }
        public string Kind { get; set; } = "";
        public string? Title { get; set; }
        public string? Owner { get; set; }
        public long LastMessageId { get; set; }
        public long JoinedAfter { get; set; }
        public long Unread { get; set; }
    }

    internal sealed class MemberRow
    {
        public long ConversationId { get; set; }
        public string Username { get; set; } = "";
        public string DisplayName { get; set; } = "";
        public long LastRead { get; set; }
    }

    public const string Select = """
        SELECT c.id AS Id, cm.user_id AS UserId, c.kind AS Kind, c.title AS Title,
               (SELECT o.username FROM users o WHERE o.id = c.owner_id) AS Owner, c.last_message_id AS LastMessageId,
               cm.joined_after_message_id AS JoinedAfter,
               (SELECT COUNT(*) FROM messages m
                 WHERE m.conversation_id = c.id AND m.sender_id <> cm.user_id AND m.deleted_at IS NULL
                   AND m.id > GREATEST(cm.last_read_message_id, cm.joined_after_message_id)) AS Unread
        FROM conversation_members cm JOIN conversations c ON c.id = cm.conversation_id
        """;

    /// <summary>One conversation, or null when it does not exist or the caller is not a member.</summary>
    public static async Task<ConversationView?> FindAsync(MySqlConnection connection, Envelope envelope, long userId, long conversationId)
    {
        var rows = (await connection.QueryAsync<Row>(
            Select + " WHERE cm.user_id = @userId AND cm.conversation_id = @conversationId", new { userId, conversationId }, commandTimeout: connection.CommandTimeout())).ToList();
        return rows.Count == 0 ? null : (await ViewsAsync(connection, envelope, rows))[0];
    }

    /// <summary>The views of <see cref="Select"/>'s rows: members, and the last message the caller may see.</summary>
    public static async Task<List<ConversationView>> ViewsAsync(MySqlConnection connection, Envelope envelope, List<Row> rows)
    {
        if (rows.Count == 0) return [];
        var members = (await connection.QueryAsync<MemberRow>($"""
            SELECT cm.conversation_id AS ConversationId, u.username AS Username, u.display_name AS DisplayName, cm.last_read_message_id AS LastRead
            FROM {SqlLists.IdsTable} JOIN conversation_members cm ON cm.conversation_id = ids.id JOIN users u ON u.id = cm.user_id
            ORDER BY cm.joined_at, u.username
            """, new { ids = SqlLists.Ids(rows.Select(r => r.Id).Distinct()) }, commandTimeout: connection.CommandTimeout())).ToLookup(m => m.ConversationId);
        // A member added later does not see what was said before they joined.
        var lastIds = rows.Where(r => r.LastMessageId > r.JoinedAfter).Select(r => r.LastMessageId).Distinct().ToArray();
        var lastMessages = new Dictionary<long, MessageView>();
        var reactions = new Dictionary<long, List<Reactions.Tally>>();
        if (lastIds.Length > 0)
        {
            var messageRows = (await connection.QueryAsync<MessageRow>(
                $"SELECT {MessageRow.Columns} FROM {SqlLists.IdsTable} JOIN messages m ON m.id = ids.id JOIN users u ON u.id = m.sender_id",
                new { ids = SqlLists.Ids(lastIds) }, commandTimeout: connection.CommandTimeout())).ToList();
            (var views, reactions) = await MessageRow.ToViewsWithReactionsAsync(connection, envelope, messageRows);
            for (var i = 0; i < messageRows.Count; i++) lastMessages[messageRows[i].ConversationId] = views[i];
        }
        // Each row is one viewer: their own "me" in the last message's reactions.
        MessageView? LastFor(Row r) =>
            r.LastMessageId > r.JoinedAfter && lastMessages.GetValueOrDefault(r.Id) is { } m
                ? m.Deleted ? m : m with { Reactions = Reactions.For(reactions, r.LastMessageId, r.UserId) }
                : null;
        return rows.Select(r => new ConversationView(
            Ids.Of(r.Id), r.Kind, r.Title, r.Owner,
            members[r.Id].Select(m => new ConversationMemberView(m.Username, m.DisplayName, m.LastRead > 0 ? Ids.Of(m.LastRead) : null)).ToList(),
            LastFor(r), r.Unread)).ToList();
    }

    /// <summary>
    /// The conversation as each of its members sees it now (their own unread count and last
    /// message), by user id: the payloads of <c>event: conversation</c>.
    /// </summary>
    public static async Task<Dictionary<long, ConversationView>> ForMembersAsync(MySqlConnection connection, Envelope envelope, long conversationId)
    {
        var rows = (await connection.QueryAsync<Row>(Select + " WHERE cm.conversation_id = @conversationId", new { conversationId }, commandTimeout: connection.CommandTimeout())).ToList();
        var views = await ViewsAsync(connection, envelope, rows);
        var byUser = new Dictionary<long, ConversationView>(rows.Count);
        for (var i = 0; i < rows.Count; i++) byUser[rows[i].UserId] = views[i];
        return byUser;
    }

    /// <summary>
    /// The conversation as someone outside it is told of it after leaving or being removed: title,
    /// owner and the members now, but no message and nothing unread. Null when it does not exist.
    /// </summary>
    public static async Task<ConversationView?> OutsiderViewAsync(MySqlConnection connection, Envelope envelope, long conversationId)
    {
        var rows = (await connection.QueryAsync<Row>("""
            SELECT c.id AS Id, CAST(0 AS UNSIGNED) AS UserId, c.kind AS Kind, c.title AS Title,
                   (SELECT o.username FROM users o WHERE o.id = c.owner_id) AS Owner, CAST(0 AS UNSIGNED) AS LastMessageId,
                   CAST(0 AS UNSIGNED) AS JoinedAfter, CAST(0 AS SIGNED) AS Unread
            FROM conversations c WHERE c.id = @conversationId
            """, new { conversationId }, commandTimeout: connection.CommandTimeout())).ToList();
        return rows.Count == 0 ? null : (await ViewsAsync(connection, envelope, rows))[0];
    }

    /// <summary>A new conversation with its members; <paramref name="ownerId"/> owns a group (its creator), null for a direct one.</summary>
    public static async Task<long> InsertAsync(MySqlConnection connection, Transaction transaction, string kind, string? title,
        string? directKey, long[] memberIds, DateTime now, long? ownerId = null)
    {
        var id = await connection.ExecuteScalarAsync<long>("""
            INSERT INTO conversations (kind, title, direct_key, owner_id, created_at, last_activity_at)
            VALUES (@kind, @title, @directKey, @ownerId, @now, @now)
            RETURNING id
            """, new { kind, title, directKey, ownerId, now }, commandTimeout: connection.CommandTimeout());
        foreach (var userId in memberIds)
            await connection.ExecuteAsync(
                "INSERT INTO conversation_members (conversation_id, user_id, joined_at) VALUES (@id, @userId, @now)",
                new { id, userId, now }, commandTimeout: connection.CommandTimeout());
        return id;
    }

    /// <summary>
    /// The one direct conversation of a pair of users, created on first use. The unique
    /// direct_key settles a race between the two creating it at once.
    /// </summary>
    public static async Task<(long Id, bool Created)> FindOrCreateDirectAsync(MySqlConnection connection, long me, long other, DateTime now)
    {
        var directKey = me < other ? $"{me}:{other}" : $"{other}:{me}";
        const string Find = "SELECT id FROM conversations WHERE direct_key = @directKey";
        if (await connection.QuerySingleOrDefaultAsync<long?>(Find, new { directKey }, commandTimeout: connection.CommandTimeout()) is { } existing) return (existing, false);
        try
        {
            await using var transaction = await Transaction.BeginAsync(connection);
            var id = await InsertAsync(connection, transaction, Direct, null, directKey, [me, other], now);
            await transaction.CommitAsync();
            return (id, true);
        }
        catch (MySqlException e) when (e.ErrorCode == MySqlErrorCode.DuplicateKeyEntry)
        {
            return (await connection.QuerySingleAsync<long>(Find, new { directKey }, commandTimeout: connection.CommandTimeout()), false);
        }
    }
}
