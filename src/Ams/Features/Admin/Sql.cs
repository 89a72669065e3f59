using Ams.Infrastructure;
using Dapper;
using MySqlConnector;

namespace Ams.Features.Admin;

static class Sql
{
    public static async Task<UserRow?> FindUserAsync(MariaDb db, string username)
    {
        if (!Users.CouldExist(username)) return null;
        await using var connection = await db.OpenConnectionAsync();
        return await connection.QuerySingleOrDefaultAsync<UserRow>($"SELECT {Users.RowColumns} FROM users WHERE username = @username", new { username }, commandTimeout: connection.CommandTimeout());
    }

    public static async Task<List<UserRow>> ListUsersAsync(MariaDb db)
    {
        await using var connection = await db.OpenConnectionAsync();
        return (await connection.QueryAsync<UserRow>($"SELECT {Users.RowColumns} FROM users ORDER BY username", commandTimeout: connection.CommandTimeout())).ToList();
    }

    public static async Task SetPasswordHashAsync(MariaDb db, long id, string passwordHash)
    {
        await using var connection = await db.OpenConnectionAsync();
        await connection.ExecuteAsync("UPDATE users SET password_hash = @passwordHash WHERE id = @id", new { id, passwordHash }, commandTimeout: connection.CommandTimeout());
    }

    public static async Task SetDisabledAsync(MariaDb db, long id, DateTime? disabledAt)
    {
        await using var connection = await db.OpenConnectionAsync();
        await connection.ExecuteAsync("UPDATE users SET disabled_at = @disabledAt WHERE id = @id", new { id, disabledAt }, commandTimeout: connection.CommandTimeout());
    }
}
