using Ams.Infrastructure;
using Ams.Infrastructure.Messaging;
using Dapper;
using MySqlConnector;

namespace Ams.Features.FindUsers;

static class Sql
{
    internal sealed class UserRow
    {
        public string Username { get; set; } = "";
        public string DisplayName { get; set; } = "";
    }

    /// <summary>An index range scan on the unique username index; '_' (a LIKE wildcard, and a username character) is escaped.</summary>
    public static async Task<List<MemberView>> StartingWithAsync(MySqlConnection connection, string prefix, int limit) =>
        (await connection.QueryAsync<UserRow>("""
            SELECT username AS Username, display_name AS DisplayName FROM users
            WHERE username LIKE @pattern ESCAPE '!'
            ORDER BY username LIMIT @limit
            """, new { pattern = prefix.Replace("!", "!!").Replace("_", "!_").Replace("%", "!%") + "%", limit }, commandTimeout: connection.CommandTimeout()))
        .Select(u => new MemberView(u.Username, u.DisplayName)).ToList();
}
