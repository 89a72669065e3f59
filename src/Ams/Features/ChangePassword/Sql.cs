using Ams.Infrastructure;
using Dapper;
using MySqlConnector;

namespace Ams.Features.ChangePassword;

static class Sql
{
    /// <summary>Replaces the hash that was verified; false when another change won meanwhile.</summary>
    public static async Task<bool> ReplaceHashAsync(MariaDb db, long id, string oldHash, string newHash, CancellationToken ct)
    {
        await using var connection = await db.OpenConnectionAsync(ct);
        return await connection.ExecuteAsync("UPDATE users SET password_hash = @newHash WHERE id = @id AND password_hash = @oldHash",
            new { id, oldHash, newHash }, commandTimeout: connection.CommandTimeout()) == 1;
    }
}
