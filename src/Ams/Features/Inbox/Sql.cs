using Ams.Infrastructure.Crypto;
using Ams.Infrastructure.Messaging;
using Dapper;
using MySqlConnector;

namespace Ams.Features.Inbox;

/// <summary>The inbox query, shared with the browser's conversation list (Chat).</summary>
public static class Sql
{
    /// <summary>The caller's inbox, newest activity first.</summary>
    public static async Task<List<ConversationView>> ListAsync(MySqlConnection connection, Envelope envelope, long userId)
    {
        var rows = (await connection.QueryAsync<Conversations.Row>(
            Conversations.Select + " WHERE cm.user_id = @userId ORDER BY c.last_activity_at DESC, c.id DESC", new { userId })).ToList();
        return await Conversations.ViewsAsync(connection, envelope, rows);
    }
}
