using System.Collections.Concurrent;
using Ams.Infrastructure;
using Ams.Infrastructure.Crypto;
using MySqlConnector;

namespace Ams.Features.SendMessage;

/// <summary>
/// Group commit for sends: the sends that arrive while a batch is being written go together in
/// the next one, so under load MariaDB parses, locks and commits once for many messages (see
/// docs/benchmarks-history.md). A lone send is written at once, in two round trips.
/// </summary>
public sealed class GroupCommit(MySqlDataSource db, Envelope envelope, TimeProvider time, ILogger<GroupCommit> logger)
{
    // One writer per node: while it is on the wire the next batch collects. Measured against two
    // and four writers, one gave the best throughput and latency (docs/benchmarks-history.md).
    const int MaxBatch = 64;
    const int Attempts = 3;

    sealed record Entry(Sql.Pending Send, TaskCompletionSource<Sql.Stored?> Done);

    readonly ConcurrentQueue<Entry> queue = new();
    int writing;

    /// <summary>The stored message, or null when the sender is not a member of the conversation.</summary>
    internal Task<Sql.Stored?> StoreAsync(long conversationId, long senderId, string body, long[]? attachments = null, IdempotencyKeys.Key? key = null)
    {
        var entry = new Entry(new Sql.Pending(conversationId, senderId, body, attachments ?? [], key),
            new TaskCompletionSource<Sql.Stored?>(TaskCreationOptions.RunContinuationsAsynchronously));
        queue.Enqueue(entry);
        StartWriter();
        return entry.Done.Task;
    }

    void StartWriter()
    {
        if (Interlocked.CompareExchange(ref writing, 1, 0) == 0) _ = Task.Run(WriteAsync);
    }

    async Task WriteAsync()
    {
        // One connection while there is work: a pooled open would reset the session for every batch.
        MySqlConnection? connection = null;
        var batch = new List<Entry>(MaxBatch);
        try
        {
            while (true)
            {
                batch.Clear();
                while (batch.Count < MaxBatch && queue.TryDequeue(out var entry)) batch.Add(entry);
                if (batch.Count == 0) break;
                connection = await WriteBatchAsync(batch, connection);
            }
        }
        catch (Exception e)
        {
            // Nothing may leave a send waiting forever.
            logger.LogError(e, "Send writer failed");
            foreach (var entry in batch) entry.Done.TrySetException(e);
        }
        finally
        {
            // A full fence: the emptiness check below must not be read before the flag is cleared,
            // or a send queued in between would find the writer busy and wait for the next send.
            Interlocked.Exchange(ref writing, 0);
            await DisposeQuietlyAsync(connection);
        }
        // A send queued after the writer found the queue empty but before it stopped.
        if (!queue.IsEmpty) StartWriter();
    }

    /// <summary>Settles every send in the batch; returns the connection to go on with, or null after a failure.</summary>
    async Task<MySqlConnection?> WriteBatchAsync(List<Entry> batch, MySqlConnection? connection)
    {
        var sends = batch.ConvertAll(e => e.Send);
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                connection ??= await OpenAsync();
                var stored = await Sql.StoreAsync(connection, envelope, sends, time.UtcNowMillis());
                for (var i = 0; i < batch.Count; i++) batch[i].Done.TrySetResult(stored[i]);
                AmsMetrics.GroupCommitBatch.Record(batch.Count);
                AmsMetrics.MessagesSent.Add(batch.Count);
                logger.LogDebug("Stored a batch of {Count} sends", batch.Count);
                return connection;
            }
            catch (Exception e)
            {
                await DisposeQuietlyAsync(connection);
                connection = null;
                // An error the server returned stopped the batch before its COMMIT, and the batch
                // was rolled back, so writing it again cannot store anything twice. After any other
                // error (the connection lost, a timeout) the COMMIT may have happened: no retry.
                var refused = e is MySqlException { SqlState: not null } server && Outages.IsServerError(server.ErrorCode);
                // A lock wait that timed out is not retried: it already held up every send on the node.
                if (refused && attempt < Attempts && e is MySqlException { ErrorCode: MySqlErrorCode.LockDeadlock })
                {
                    logger.LogInformation("Send batch of {Count} retried after {Error}", batch.Count, ((MySqlException)e).ErrorCode);
                    continue;
                }
                // One send the database refuses must not fail the others that shared its batch:
                // they are written one by one, so only the refused one answers 503.
                if (refused && batch.Count > 1)
                {
                    logger.LogWarning("Send batch of {Count} refused ({Message}); writing its sends one by one", batch.Count, e.Message);
                    foreach (var entry in batch) connection = await WriteBatchAsync([entry], connection);
                    return connection;
                }
                foreach (var entry in batch) entry.Done.TrySetException(e);
                return null;
            }
        }
    }

    static async Task DisposeQuietlyAsync(MySqlConnection? connection)
    {
        if (connection is null) return;
        try { await connection.DisposeAsync(); }
        catch (MySqlException) { }   // already broken; the pool discards it
    }

    async Task<MySqlConnection> OpenAsync()
    {
        var connection = await db.OpenConnectionAsync();
        // A conversation locked elsewhere should hold up this node's sends for seconds, not the
        // 50 s default: the writer is shared by every send on the node.
        await using var timeout = new MySqlCommand("SET SESSION innodb_lock_wait_timeout = 5", connection);
        await timeout.ExecuteNonQueryAsync();
        return connection;
    }
}
