using Ams.Infrastructure;
using Dapper;
using MySqlConnector;

namespace Ams.Features.TwoFactor;

static class Sql
{
    public static async Task<byte[]?> SecretAsync(MySqlConnection connection, long userId)
    {
        // Plain MySqlCommand for the byte[] column (see Envelope).
        await using var select = new MySqlCommand("SELECT secret FROM two_factor WHERE user_id = @userId", connection);
        select.Parameters.AddWithValue("@userId", userId);
        return await select.ExecuteScalarAsync() as byte[];
    }

    public static async Task SavePendingAsync(MySqlConnection connection, Transaction transaction, long userId, byte[] sealedSecret, DateTime now)
    {
        await using var upsert = new MySqlCommand("""
            INSERT INTO two_factor (user_id, secret, created_at) VALUES (@userId, @secret, @now)
            ON DUPLICATE KEY UPDATE secret = VALUES(secret), created_at = VALUES(created_at), last_step = NULL
            """, connection);
        upsert.Parameters.AddWithValue("@userId", userId);
        upsert.Parameters.AddWithValue("@secret", sealedSecret);
        upsert.Parameters.AddWithValue("@now", now);
        await upsert.ExecuteNonQueryAsync();
    }

    /// <summary>Turns 2FA on and replaces the recovery codes, in one transaction.</summary>
    public static async Task EnableAsync(MySqlConnection connection, long userId, IEnumerable<string> codeHashes)
    {
        await using var transaction = await Transaction.BeginAsync(connection);
        await connection.ExecuteAsync("UPDATE users SET two_factor_enabled = TRUE WHERE id = @userId", new { userId }, commandTimeout: connection.CommandTimeout());
        await ReplaceCodesAsync(connection, transaction, userId, codeHashes);
        await transaction.CommitAsync();
    }

    public static async Task ReplaceCodesAsync(MySqlConnection connection, Transaction transaction, long userId, IEnumerable<string> codeHashes)
    {
        await connection.ExecuteAsync("DELETE FROM recovery_codes WHERE user_id = @userId", new { userId }, commandTimeout: connection.CommandTimeout());
        foreach (var codeHash in codeHashes)
            await connection.ExecuteAsync("INSERT INTO recovery_codes (user_id, code_hash) VALUES (@userId, @codeHash)",
                new { userId, codeHash }, commandTimeout: connection.CommandTimeout());
    }

    public static async Task DisableAsync(MySqlConnection connection, long userId)
    {
        await using var transaction = await Transaction.BeginAsync(connection);
        // One statement per round trip (see Database.ExecuteEachAsync).
        await connection.ExecuteAsync("UPDATE users SET two_factor_enabled = FALSE WHERE id = @userId", new { userId }, commandTimeout: connection.CommandTimeout());
        await connection.ExecuteAsync("DELETE FROM two_factor WHERE user_id = @userId", new { userId }, commandTimeout: connection.CommandTimeout());
        await connection.ExecuteAsync("DELETE FROM recovery_codes WHERE user_id = @userId", new { userId }, commandTimeout: connection.CommandTimeout());
        await transaction.CommitAsync();
    }

    /// <summary>Takes a TOTP time step for this user: true only if it is later than every step taken before.</summary>
    public static async Task<bool> TakeStepAsync(MySqlConnection connection, long userId, long step) =>
        await connection.ExecuteAsync("UPDATE two_factor SET last_step = @step WHERE user_id = @userId AND (last_step IS NULL OR last_step < @step)",
            new { userId, step }, commandTimeout: connection.CommandTimeout()) == 1;

    public static async Task<bool> HasRecoveryCodeAsync(MySqlConnection connection, long userId, string codeHash) =>
        await connection.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM recovery_codes WHERE user_id = @userId AND code_hash = @codeHash",
            new { userId, codeHash }, commandTimeout: connection.CommandTimeout()) > 0;

    /// <summary>Uses a recovery code up: true for exactly one caller, ever.</summary>
    public static async Task<bool> UseRecoveryCodeAsync(MySqlConnection connection, long userId, string codeHash) =>
        await connection.ExecuteAsync("DELETE FROM recovery_codes WHERE user_id = @userId AND code_hash = @codeHash",
            new { userId, codeHash }, commandTimeout: connection.CommandTimeout()) == 1;
}
