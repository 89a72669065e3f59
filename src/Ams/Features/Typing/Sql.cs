using Ams.Infrastructure;
using Dapper;
using MySqlConnector;

namespace Ams.Features.Typing;

static class Sql
{
    internal sealed class MemberRow
    {
        public long UserId { get; set; }
        public string Username { get; set; } = "";
    }

    /// <summary>The conversation's members with their usernames; empty when the caller is not one of them.</summary>
    public static async Task<List<MemberRow>> MembersAsync(MySqlConnection connection, long callerId, long conversationId)
    {
        var members = (await connection.QueryAsync<MemberRow>("""
            SELECT cm.user_id AS UserId, u.username AS Username
            FROM conversation_members cm JOIN users u ON u.id = cm.user_id
            WHERE cm.conversation_id = @conversationId
            """, new { conversationId }, commandTimeout: connection.CommandTimeout())).ToList();
        return members.Any(m => m.UserId == callerId) ? members : [];
    }
}
