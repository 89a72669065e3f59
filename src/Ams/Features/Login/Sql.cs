using Ams.Infrastructure;
using Dapper;
using MySqlConnector;

namespace Ams.Features.Login;

static class Sql
{
    public static async Task<UserRow?> FindUserAsync(MySqlDataSource db, string username, CancellationToken ct)
    {
        await using var connection = await db.OpenConnectionAsync(ct);
        return await connection.QuerySingleOrDefaultAsync<UserRow>("""
            SELECT id AS Id, username AS Username, display_name AS DisplayName, password_hash AS PasswordHash,
                   two_factor_enabled AS TwoFactorEnabled, created_at AS CreatedAt
            FROM users WHERE username = @username
            """, new { username });
    }

    /// <summary>Only replaces the hash that was verified, so a concurrent password change wins.</summary>
    public static async Task UpdateHashAsync(MySqlDataSource db, long id, string oldHash, string newHash, CancellationToken ct)
    {
        await using var connection = await db.OpenConnectionAsync(ct);
        await connection.ExecuteAsync("UPDATE users SET password_hash = @newHash WHERE id = @id AND password_hash = @oldHash",
            new { id, oldHash, newHash });
    }
}
