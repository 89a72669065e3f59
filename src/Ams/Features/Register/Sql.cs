using Ams.Infrastructure;
using Dapper;
using MySqlConnector;

namespace Ams.Features.Register;

static class Sql
{
    /// <summary>Inserts the user; null when the (lower-cased) name is taken. The unique index decides races.</summary>
    public static async Task<long?> InsertUserAsync(MariaDb db, string username, string displayName, string passwordHash, DateTime createdAt, CancellationToken ct)
    {
        await using var connection = await db.OpenConnectionAsync(ct);
        await using var transaction = await Transaction.BeginAsync(connection, ct);
        try
        {
            var id = await InsertAsync(connection, transaction, username, displayName, passwordHash, createdAt);
            await transaction.CommitAsync(ct);
            return id;
        }
        catch (MySqlException e) when (e.ErrorCode == MySqlErrorCode.DuplicateKeyEntry)
        {
            return null;
        }
    }

    public enum InvitedOutcome { Created, Taken, InviteRejected }

    /// <summary>
    /// Takes one use of the invite and inserts the user in one transaction: a taken name gives the
    /// use back, and two registrations racing for the last use cannot both succeed.
    /// </summary>
    public static async Task<(InvitedOutcome Outcome, long Id)> InsertInvitedUserAsync(MariaDb db, string inviteHash, string username,
        string displayName, string passwordHash, DateTime createdAt, CancellationToken ct)
    {
        await using var connection = await db.OpenConnectionAsync(ct);
        await using var transaction = await Transaction.BeginAsync(connection, ct);
        var taken = await connection.ExecuteAsync("UPDATE invites SET uses_left = uses_left - 1 WHERE code_hash = @inviteHash AND uses_left > 0",
            new { inviteHash }, commandTimeout: connection.CommandTimeout());
        if (taken != 1) return (InvitedOutcome.InviteRejected, 0);
        try
        {
            var id = await InsertAsync(connection, transaction, username, displayName, passwordHash, createdAt);
            await transaction.CommitAsync(ct);
            return (InvitedOutcome.Created, id);
        }
        catch (MySqlException e) when (e.ErrorCode == MySqlErrorCode.DuplicateKeyEntry)
        {
            return (InvitedOutcome.Taken, 0);
        }
    }

    // One statement per round trip (see Database.ExecuteEachAsync).
    static async Task<long> InsertAsync(MySqlConnection connection, Transaction transaction, string username, string displayName, string passwordHash, DateTime createdAt)
    {
        var id = await connection.ExecuteScalarAsync<long>("""
            INSERT INTO users (username, display_name, password_hash, created_at)
            VALUES (@username, @displayName, @passwordHash, @createdAt)
            RETURNING id
            """, new { username, displayName, passwordHash, createdAt }, commandTimeout: connection.CommandTimeout());
        await connection.ExecuteAsync("INSERT INTO user_event_seq (user_id) VALUES (@id)", new { id }, commandTimeout: connection.CommandTimeout());
        return id;
    }
}
