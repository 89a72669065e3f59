using Ams.Infrastructure;
using Dapper;
using MySqlConnector;

namespace Ams.Features.Login;

static class Sql
{
    /// <summary>The account that may sign in: a disabled one is not found, so it gets the wrong password's 401 after the same work.</summary>
    public static async Task<UserRow?> FindUserAsync(MariaDb db, string username, CancellationToken ct)
    {
        if (!Users.CouldExist(username)) return null;
        return await db.ReadUnlessHungAsync(connection => connection.QuerySingleOrDefaultAsync<UserRow>(
            $"SELECT {Users.RowColumns} FROM users WHERE username = @username AND disabled_at IS NULL", new { username }, commandTimeout: connection.CommandTimeout()), ct);
    }

    /// <summary>Only replaces the hash that was verified, so a concurrent password change wins.</summary>
    public static async Task UpdateHashAsync(MariaDb db, long id, string oldHash, string newHash, CancellationToken ct)
    {
        await using var connection = await db.OpenConnectionAsync(ct);
        await connection.ExecuteAsync("UPDATE users SET password_hash = @newHash WHERE id = @id AND password_hash = @oldHash",
            new { id, oldHash, newHash }, commandTimeout: connection.CommandTimeout());
    }
}
