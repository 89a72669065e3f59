using System.Globalization;
using MySqlConnector;

namespace Ams.Tests.Support;

/// <summary>Row locks held by a transaction of the test's own, as another node's request would hold them.</summary>
public static class RowLocks
{
    /// <summary>Locks the conversation's row; the send writer's next batch for it waits (up to its 5 s lock wait) until the transaction ends.</summary>
    public static Task<(MySqlConnection Connection, MySqlTransaction Transaction)> LockConversationAsync(this Services services, string conversationId) =>
        services.LockRowAsync("conversations", conversationId);

    /// <summary>Locks one row of <paramref name="table"/> by its id in a transaction of the test's own.</summary>
    public static async Task<(MySqlConnection Connection, MySqlTransaction Transaction)> LockRowAsync(this Services services, string table, string id)
    {
        var connection = new MySqlConnection(services.MariaDb.ConnectionString(services.Database));
        await connection.OpenAsync();
        var transaction = await connection.BeginTransactionAsync();
        await using var lockRow = new MySqlCommand($"SELECT id FROM {table} WHERE id = @id FOR UPDATE", connection, transaction);
        lockRow.Parameters.AddWithValue("@id", long.Parse(id, CultureInfo.InvariantCulture));
        await lockRow.ExecuteScalarAsync();
        return (connection, transaction);
    }

    /// <summary>
    /// Returns once InnoDB shows a transaction waiting for a lock that <paramref name="holder"/>'s
    /// transaction holds; fails if <paramref name="send"/> finishes first, or nothing waits within 10 s.
    /// </summary>
    public static async Task WaitUntilBlockedByAsync(this Services services, MySqlConnection holder, Task send)
    {
        await using var probe = new MySqlConnection(services.MariaDb.ConnectionString(services.Database));
        await probe.OpenAsync();
        await using var waits = new MySqlCommand("""
            SELECT COUNT(*) FROM information_schema.INNODB_LOCK_WAITS w
            JOIN information_schema.INNODB_TRX blocking ON blocking.trx_id = w.blocking_trx_id
            JOIN information_schema.INNODB_TRX requesting ON requesting.trx_id = w.requesting_trx_id
            WHERE blocking.trx_mysql_thread_id = @holder AND requesting.trx_state = 'LOCK WAIT'
            """, probe);
        waits.Parameters.AddWithValue("@holder", holder.ServerThread);
        var started = System.Diagnostics.Stopwatch.StartNew();
        while (Convert.ToInt64(await waits.ExecuteScalarAsync(), CultureInfo.InvariantCulture) == 0)
        {
            if (send.IsCompleted)
                throw new Xunit.Sdk.XunitException($"the request finished ({send.Status}) without waiting for the lock the test holds");
            if (started.Elapsed > TimeSpan.FromSeconds(10))
                throw new Xunit.Sdk.XunitException("after 10 s nothing waits for the lock the test holds");
            // InnoDB refreshes the INNODB_TRX / INNODB_LOCK_WAITS snapshot only after 100 ms
            // without a read (CACHE_MIN_IDLE_TIME_US): polled faster, it would never change.
            await Task.Delay(150);
        }
    }
}
