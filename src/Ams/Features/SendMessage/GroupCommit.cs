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
    // Two writers: one batch collects while the other is on the wire.
    const int Writers = 2;
    const int MaxBatch = 64;
    const int Attempts = 3;

    sealed record Entry(Sql.Pending Send, TaskCompletionSource<Sql.Stored?> Done);

    readonly ConcurrentQueue<Entry> queue = new();
    int running;

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
        while (true)
        {
            var current = Volatile.Read(ref running);
            if (current >= Writers) return;
            if (Interlocked.CompareExchange(ref running, current + 1, current) != current) continue;
            _ = Task.Run(WriteAsync);
            return;
        }
    }

    async Task WriteAsync()
    {
        try
        {
            var batch = new List<Entry>(MaxBatch);
            while (true)
            {
                batch.Clear();
                while (batch.Count < MaxBatch && queue.TryDequeue(out var entry)) batch.Add(entry);
                if (batch.Count == 0) break;
                await WriteBatchAsync(batch);
            }
        }
        finally
        {
            Interlocked.Decrement(ref running);
        }
        // A send queued after this writer found the queue empty, while all writers were busy.
        if (!queue.IsEmpty) StartWriter();
    }

    async Task WriteBatchAsync(List<Entry> batch)
    {
        var sends = batch.ConvertAll(e => e.Send);
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await using var connection = await db.OpenConnectionAsync();
                var stored = await Sql.StoreAsync(connection, envelope, sends, time.UtcNowMillis());
                for (var i = 0; i < batch.Count; i++) batch[i].Done.TrySetResult(stored[i]);
                logger.LogDebug("Stored a batch of {Count} sends", batch.Count);
                return;
            }
            // The whole batch was rolled back, so trying it again cannot store anything twice.
            catch (MySqlException e) when (attempt < Attempts && e.ErrorCode is MySqlErrorCode.LockDeadlock or MySqlErrorCode.LockWaitTimeout)
            {
                logger.LogInformation("Send batch of {Count} retried after {Error}", batch.Count, e.ErrorCode);
            }
            catch (Exception e)
            {
                foreach (var entry in batch) entry.Done.TrySetException(e);
                return;
            }
        }
    }
}
