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
    internal Task<Sql.Stored?> StoreAsync(long conversationId, long senderId, string body)
    {
        var entry = new Entry(new Sql.Pending(conversationId, senderId, body),
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
        try
        {
            var batch = new List<Entry>(MaxBatch);
            while (true)
            {
                batch.Clear();
                while (batch.Count < MaxBatch && queue.TryDequeue(out var entry)) batch.Add(entry);
                if (batch.Count == 0) break;
                connection = await WriteBatchAsync(batch, connection);
            }
        }
        finally
        {
            if (connection is not null) await connection.DisposeAsync();
            Volatile.Write(ref writing, 0);
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
                connection ??= await db.OpenConnectionAsync();
                var stored = await Sql.StoreAsync(connection, envelope, sends, time.UtcNowMillis());
                for (var i = 0; i < batch.Count; i++) batch[i].Done.TrySetResult(stored[i]);
                logger.LogDebug("Stored a batch of {Count} sends", batch.Count);
                return connection;
            }
            catch (Exception e)
            {
                if (connection is not null) await connection.DisposeAsync();
                connection = null;
                // The whole batch was rolled back, so trying it again cannot store anything twice.
                if (attempt < Attempts && e is MySqlException { ErrorCode: MySqlErrorCode.LockDeadlock or MySqlErrorCode.LockWaitTimeout })
                {
                    logger.LogInformation("Send batch of {Count} retried after {Error}", batch.Count, ((MySqlException)e).ErrorCode);
                    continue;
                }
                // One send the database refuses must not fail the others that shared its batch:
                // they are written one by one, so only the refused one answers 503.
                if (batch.Count > 1 && e is MySqlException { IsTransient: false })
                {
                    logger.LogWarning("Send batch of {Count} failed ({Message}); writing its sends one by one", batch.Count, e.Message);
                    foreach (var entry in batch) connection = await WriteBatchAsync([entry], connection);
                    return connection;
                }
                foreach (var entry in batch) entry.Done.TrySetException(e);
                return null;
            }
        }
    }
}
