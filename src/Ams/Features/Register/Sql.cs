using Dapper;
using MySqlConnector;

namespace Ams.Features.Register;

static class Sql
{
    /// <summary>Inserts the user; null when the (lower-cased) name is taken. The unique index decides races.</summary>
    public static async Task<long?> InsertUserAsync(MySqlDataSource db, string username, string displayName, string passwordHash, DateTime createdAt, CancellationToken ct)
    {
        await using var connection = await db.OpenConnectionAsync(ct);
        try
        {
            return await connection.ExecuteScalarAsync<long>("""
                INSERT INTO users (username, display_name, password_hash, created_at)
                VALUES (@username, @displayName, @passwordHash, @createdAt);
                INSERT INTO user_event_seq (user_id) VALUES (LAST_INSERT_ID());
                SELECT LAST_INSERT_ID();
                """, new { username, displayName, passwordHash, createdAt });
        }
        catch (MySqlException e) when (e.ErrorCode == MySqlErrorCode.DuplicateKeyEntry)
        {
            return null;
        }
    }
}
