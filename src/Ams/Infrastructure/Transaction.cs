using MySqlConnector;

namespace Ams.Infrastructure;

/// <summary>
/// A transaction whose every round trip, BEGIN included, is a command with the connection's command
/// timeout. MySqlConnector's own <c>BeginTransactionAsync</c> reads its two replies with no timeout
/// (and no cancellation once sent): on a MariaDB that hangs, a request that had just reached it
/// waited for as long as the hang lasted (a test's mark-read still waiting after 60 s with a 3 s
/// command timeout). Its statements name no transaction (MySqlConnector checks a command's against
/// its own, which is none): the one the session has open is theirs, which is all MariaDB knows of
/// either way. Helpers that must run inside one take it as a parameter all the same.
/// </summary>
public sealed class Transaction : IAsyncDisposable
{
    readonly MySqlConnection connection;
    bool ended;

    Transaction(MySqlConnection connection) => this.connection = connection;

    /// <summary>REPEATABLE READ, set for the session as MySqlConnector's own BEGIN sets it (pooled connections are not reset: see MariaDb.Host).</summary>
    public static async Task<Transaction> BeginAsync(MySqlConnection connection, CancellationToken ct = default)
    {
        await using var begin = new MySqlCommand("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ; START TRANSACTION", connection);
        await begin.ExecuteNonQueryAsync(ct);
        return new Transaction(connection);
    }

    public Task CommitAsync(CancellationToken ct = default) => EndAsync("COMMIT", ct);

    public Task RollbackAsync(CancellationToken ct = default) => EndAsync("ROLLBACK", ct);

    async Task EndAsync(string statement, CancellationToken ct)
    {
        ended = true;
        await using var end = new MySqlCommand(statement, connection);
        await end.ExecuteNonQueryAsync(ct);
    }

    /// <summary>Rolled back unless it was ended: a pooled connection must not keep its locks.</summary>
    public async ValueTask DisposeAsync()
    {
        if (ended || connection.State != System.Data.ConnectionState.Open) return;
        try
        {
            await RollbackAsync();
        }
        catch (Exception e) when (e is MySqlException or InvalidOperationException)
        {
            // The connection broke (a timeout closes it): the server rolls back when it notices.
        }
    }
}
