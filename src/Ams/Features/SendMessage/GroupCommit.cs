using System.Collections.Concurrent;
using Ams.Infrastructure;
using Ams.Infrastructure.Crypto;
using MySqlConnector;

namespace Ams.Features.SendMessage;

/// <summary>
/// Group commit for sends: the sends that arrive while a batch is being written go together in
/// the next one, so under load MariaDB parses, locks and commits once for many messages (see
/// docs/benchmarks-history.md). A lone send is written at once, in three round trips.
/// </summary>
public sealed class GroupCommit(MariaDb db, Envelope envelope, MariaDbCircuit circuit, TimeProvider time, ILogger<GroupCommit> logger) : IDisposable
{
    // One writer per node: while it is on the wire the next batch collects. Measured against two
    // and four writers, one gave the best throughput and latency (docs/benchmarks-history.md).
    const int MaxBatch = 64;
    // A write set certified first on another Galera node refuses a conflicting commit (deadlock
    // error), and nodes writing into one conversation at once lose that race often, sometimes many
    // times in a row: the batch is written again, whole, after a growing random wait (see
    // ConflictRetry), up to ~4 s in all. On one server a deadlock is rare and one retry settles it.
    const int Attempts = ConflictRetry.Attempts;

    sealed record Entry(Sql.Pending Send, TaskCompletionSource<Sql.Stored?> Done);

    /// <summary>A send was a repeat (the same sender and Idempotency-Key) of one stored in the same batch: ask for that one.</summary>
    internal sealed class RepeatedKeyException() : Exception("A repeat of a send in the same batch.");

    /// <summary>
    /// Whether a batch may still be committed: once its COMMIT is on the wire the outcome is
    /// MariaDB's, but before that the node may give up waiting for a MariaDB that holds the batch,
    /// answer its sends 503 and see that nothing of it is ever committed (see RefuseHeldIfHung).
    /// </summary>
    sealed class CommitGate(List<Entry> batch)
    {
        const int Open = 0, Committing = 1, GivenUp = 2;
        int state;

        public List<Entry> Batch { get; } = batch;
        public bool IsGivenUp => Volatile.Read(ref state) == GivenUp;
        /// <summary>True when the COMMIT may be sent; from then on the batch cannot be given up.</summary>
        public bool TryCommit() => Interlocked.CompareExchange(ref state, Committing, Open) == Open;
        /// <summary>After a COMMIT refused for a conflict: the batch is written again, and may be given up again.</summary>
        public void Reopen() => Interlocked.CompareExchange(ref state, Open, Committing);
        /// <summary>True when the batch will not be committed; its sends are to be answered.</summary>
        public bool TryGiveUp() => Interlocked.CompareExchange(ref state, GivenUp, Open) == Open;
    }

    readonly ConcurrentQueue<Entry> queue = new();
    int writing;
    // The writer that owns the queue: a writer whose batch hangs on a host of a fail-over list that
    // the node has passed over (see MariaDb) is left to finish that batch alone, and a new one,
    // with a new number, takes the queue on to the next host (see RefuseQueuedIfHungAsync).
    int generation;
    string? writerHost;       // the host the current writer's connection is on
    // Set while the idle writer waits for the next send, keeping its connection: returned to the
    // pool between batches, it would be reset (a round trip MariaDB pays for) and taken again.
    TaskCompletionSource? idle;
    static readonly TimeSpan Linger = TimeSpan.FromMilliseconds(50);

    // A MariaDB that hangs (paused, a stalled disk) rather than fails holds the writer, and with it
    // every send on the node, until MySqlConnector's timeouts (15 s to open, 30 s a command), with nothing in the log
    // meanwhile. A watch once a second says so after StallWarning, and again when the batch is over;
    // it has the MariaDbCircuit probe MariaDB, and when that opens it (new requests answer 503 at
    // once), answers the sends queued behind the batch 503 (nothing of them was written) rather than
    // hold them for it.
    static readonly TimeSpan StallWarning = TimeSpan.FromSeconds(5);
    // Unless MariaDB is known not to answer already, a batch waits out a lock held elsewhere first
    // (its lock wait, Sql.LockWaitSeconds): that is MariaDB answering, and a probe then, missed
    // on a loaded node, would open the circuit over one locked conversation.
    static readonly TimeSpan StallPastLockWait = TimeSpan.FromSeconds(Sql.LockWaitSeconds + 2);
    readonly Lock stall = new();
    long batchStartedAt;      // time.GetTimestamp() of the batch on the wire, 0 when none
    CommitGate? onTheWire;    // that batch
    long stalledSince;        // the same for the batch the last warning was about, 0 once it is over
    ITimer? stallWatch;
    bool disposed;

    /// <summary>The stored message, or null when the sender is not a member of the conversation.</summary>
    internal Task<Sql.Stored?> StoreAsync(long conversationId, long senderId, string body, long[]? attachments = null, IdempotencyKeys.Key? key = null)
    {
        var entry = new Entry(new Sql.Pending(conversationId, senderId, body, attachments ?? [], key),
            new TaskCompletionSource<Sql.Stored?>(TaskCreationOptions.RunContinuationsAsynchronously));
        queue.Enqueue(entry);
        Volatile.Read(ref idle)?.TrySetResult();
        StartWriter();
        return entry.Done.Task;
    }

    void StartWriter()
    {
        if (Interlocked.CompareExchange(ref writing, 1, 0) != 0) return;
        if (Volatile.Read(ref stallWatch) is null) StartStallWatch();
        var writer = Volatile.Read(ref generation);
        _ = Task.Run(() => WriteAsync(writer));
    }

    void StartStallWatch()
    {
        lock (stall)
        {
            if (stallWatch is not null || disposed) return;
            // Not the first sender's request context: its trace and log scopes are not the watch's.
            using (ExecutionContext.SuppressFlow())
                stallWatch = time.CreateTimer(_ => WatchForStall(), null, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1));
        }
    }

    void BatchStarts(int writer, CommitGate gate)
    {
        lock (stall)
            if (writer == generation) (batchStartedAt, onTheWire) = (time.GetTimestamp(), gate);
    }

    void BatchOver(int writer, long startedAt, bool stored)
    {
        long stalled;
        lock (stall)
        {
            if (writer != generation) stalled = startedAt;   // left behind: its stall was logged
            else (batchStartedAt, stalled, stalledSince, onTheWire) = (0, stalledSince, 0, null);
        }
        if (stalled != 0)
            logger.LogInformation("The send batch that waited for MariaDB is over after {Seconds:F1} s: {Outcome}", time.GetElapsedTime(stalled).TotalSeconds,
                stored ? "stored" : "not stored");
    }

    void WatchForStall()
    {
        long since;
        lock (stall)
        {
            since = batchStartedAt;
            if (since == 0 || stalledSince != 0 || time.GetElapsedTime(since) < (KnownNotAnswering() ? StallWarning : StallPastLockWait)) return;
            stalledSince = since;
        }
        logger.LogWarning("A send batch has waited {Seconds:F0} s for MariaDB; this node's sends wait with it ({Queued} queued behind it)",
            time.GetElapsedTime(since).TotalSeconds, queue.Count);
        _ = RefuseQueuedIfHungAsync(time.GetElapsedTime(since));
    }

    /// <summary>The batch's MariaDB is known not to answer: the circuit is open, or its host of a list was passed over as hung.</summary>
    bool KnownNotAnswering() => circuit.IsOpen || WriterHostPassedOver() is not null;

    MariaDb.Host? WriterHostPassedOver() =>
        db.Hosts.Count > 1 && db.Hosts.FirstOrDefault(host => host.Name == Volatile.Read(ref writerHost)) is { PassedOver: true } hung ? hung : null;

    async Task RefuseQueuedIfHungAsync(TimeSpan waited)
    {
        if (!await circuit.SuspectAsync($"a send batch has waited {waited.TotalSeconds:F0} s"))
        {
            // Another host of the list answers (or MariaDB is merely slow): the queue waits for the
            // batch unless the batch's host is one the node passed over as hung.
            if (WriterHostPassedOver() is { } hung) LeaveWriterBehind(hung.Name);
            return;
        }
        var refused = 0;
        while (queue.TryDequeue(out var queued))
            if (queued.Done.TrySetException(new MariaDbNotAnsweringException())) refused++;
        if (refused > 0) logger.LogWarning("Sends queued behind the held batch answer 503, none of them written: {Refused}", refused);
        CommitGate? held;
        lock (stall) held = onTheWire;
        RefuseHeldIfHung(held);
    }

    /// <summary>
    /// The sends of a batch that MariaDB holds answer 503 rather than wait for it (up to the
    /// command timeout, or as long as a paused server stays paused), unless its COMMIT is already
    /// on the wire: then only MariaDB knows whether they are stored.
    /// </summary>
    void RefuseHeldIfHung(CommitGate? held)
    {
        if (held is null || !held.TryGiveUp()) return;
        var refused = 0;
        foreach (var entry in held.Batch)
            if (entry.Done.TrySetException(new MariaDbNotAnsweringException())) refused++;
        logger.LogWarning("Sends of the held batch answer 503, and it will not be committed: {Refused}", refused);
    }

    void LeaveWriterBehind(string host)
    {
        CommitGate? held;
        lock (stall)
        {
            if (batchStartedAt == 0) return;   // the batch is over after all
            generation++;
            (batchStartedAt, stalledSince, held, onTheWire) = (0, 0, onTheWire, null);
        }
        logger.LogWarning("The send batch on MariaDB server {Host}, which does not answer, is left to finish alone; the {Queued} sends queued behind it go to the next server",
            host, queue.Count);
        Volatile.Write(ref writerHost, null);
        RefuseHeldIfHung(held);
        Interlocked.Exchange(ref writing, 0);
        StartWriter();
    }

    public void Dispose()
    {
        lock (stall)
        {
            disposed = true;
            stallWatch?.Dispose();
        }
    }

    async Task WriteAsync(int writer)
    {
        // One connection while there is work: a pooled open would reset the session for every batch.
        MySqlConnection? connection = null;
        var batch = new List<Entry>(MaxBatch);
        try
        {
            while (writer == Volatile.Read(ref generation))
            {
                batch.Clear();
                while (batch.Count < MaxBatch && queue.TryDequeue(out var entry))
                {
                    // Two sends with one key in one transaction would have the key's unique index
                    // refuse the batch, and every send in it would be written again one by one:
                    // a client repeating a send at once could slow everybody's. The repeat waits
                    // for the first instead.
                    if (entry.Send.Key is { } key && batch.Find(e => e.Send.SenderId == entry.Send.SenderId && e.Send.Key?.Value == key.Value) is { } first)
                        _ = AnswerAfterAsync(first, entry);
                    else batch.Add(entry);
                }
                if (batch.Count == 0)
                {
                    if (connection is null || !await NextSendWithinAsync(Linger)) break;
                    continue;
                }
                connection = await WriteBatchAsync(batch, connection, writer);
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
            // A writer left behind owns neither.
            if (writer == Volatile.Read(ref generation)) Interlocked.Exchange(ref writing, 0);
            await DisposeQuietlyAsync(connection);
        }
        // A send queued after the writer found the queue empty but before it stopped.
        if (writer == Volatile.Read(ref generation) && !queue.IsEmpty) StartWriter();
    }

    /// <summary>Settles every send in the batch; returns the connection to go on with, or null after a failure.</summary>
    async Task<MySqlConnection?> WriteBatchAsync(List<Entry> batch, MySqlConnection? connection, int writer, int lockWaitSeconds = Sql.LockWaitSeconds)
    {
        var sends = batch.ConvertAll(e => e.Send);
        var gate = new CommitGate(batch);
        for (var attempt = 1; ; attempt++)
        {
            var startedAt = time.GetTimestamp();
            try
            {
                BatchStarts(writer, gate);
                connection ??= await db.OpenConnectionAsync();
                if (writer == Volatile.Read(ref generation)) Volatile.Write(ref writerHost, connection.DataSource);
                var stored = await Sql.StoreAsync(connection, envelope, sends, time.UtcNowMillis(), gate.TryCommit, lockWaitSeconds);
                BatchOver(writer, startedAt, stored: true);
                for (var i = 0; i < batch.Count; i++) batch[i].Done.TrySetResult(stored[i]);
                AmsMetrics.GroupCommitBatch.Record(batch.Count);
                AmsMetrics.MessagesSent.Add(batch.Count);
                logger.LogDebug("Stored a batch of {Count} sends", batch.Count);
                return connection;
            }
            catch (Exception e)
            {
                BatchOver(writer, startedAt, stored: false);
                await DisposeQuietlyAsync(connection);
                connection = null;
                // Its sends were answered 503 while MariaDB held it (RefuseHeldIfHung): nothing more to do.
                if (gate.IsGivenUp) return null;
                // An error the server returned came before the COMMIT was sent (its own round trip,
                // after every other result: see Sql), and the transaction was rolled back, so
                // writing the batch again cannot store anything twice. After any other error (the
                // connection lost, a timeout) the COMMIT may have happened: no retry.
                var refused = e is Sql.AbortedUnderBatch
                    || e is MySqlException { SqlState: not null } server && Outages.IsServerError(server.ErrorCode);
                // A conflict (a deadlock, or on Galera a commit refused for a write set certified
                // first elsewhere) is written again whole; a lock wait that timed out is not: it
                // already held up every send on the node.
                var conflict = e is Sql.AbortedUnderBatch || ConflictRetry.IsConflict(e);
                if (conflict && attempt < Attempts)
                {
                    gate.Reopen();
                    logger.LogDebug("Send batch of {Count} written again after a conflict ({Error})", batch.Count, e.Message);
                    AmsMetrics.ConflictRetries.Add(1, new KeyValuePair<string, object?>("operation", "send"));
                    await Task.Delay(ConflictRetry.BackOff(attempt));
                    continue;
                }
                // One send the database refuses must not fail the others that shared its batch:
                // they are written one by one, so only the refused one answers 503. (Not after
                // conflicts: written one by one they would only conflict more.)
                if (refused && !conflict && batch.Count > 1)
                {
                    // Claimed first, as a COMMIT claims it: a give-up that read this batch as on the
                    // wire must not answer 503 for sends that the one-by-one writes then store.
                    if (!gate.TryCommit()) return null;
                    // The error's name, not its message: a duplicate key's message quotes the value (an Idempotency-Key).
                    // A duplicate in a batch with Idempotency-Keys is most likely a client's repeat racing
                    // its first send on another node: not the node's trouble. Any other is.
                    var repeatRace = e is MySqlException { ErrorCode: MySqlErrorCode.DuplicateKeyEntry } && batch.Exists(entry => entry.Send.Key is not null);
                    logger.Log(repeatRace ? LogLevel.Information : LogLevel.Warning,
                        "Send batch of {Count} refused ({Error}); writing its sends one by one", batch.Count,
                        e is MySqlException refusal ? refusal.ErrorCode.ToString() : e.GetType().Name);
                    // After a lock wait the batch has waited its 5 s already, and the node's sends with it:
                    // written one by one, a send waits 1 s more at most, and the others of a conversation
                    // that still waits are refused with it, not after 5 s each.
                    var lockWait = e is MySqlException { ErrorCode: MySqlErrorCode.LockWaitTimeout };
                    var stillLocked = new HashSet<long>();
                    foreach (var entry in batch)
                    {
                        if (stillLocked.Contains(entry.Send.ConversationId))
                        {
                            entry.Done.TrySetException(e);
                            continue;
                        }
                        connection = await WriteBatchAsync([entry], connection, writer, lockWait ? 1 : Sql.LockWaitSeconds);
                        if (lockWait && entry.Done.Task.Exception?.InnerException is MySqlException { ErrorCode: MySqlErrorCode.LockWaitTimeout })
                            stillLocked.Add(entry.Send.ConversationId);
                    }
                    return connection;
                }
                // Conflicts that did not settle in time answer 503 (StillConflictingException), and are
                // not run again by ConflictRetry: the batch was written again for seconds already.
                var failure = conflict ? new ConflictRetry.StillConflictingException($"Send batch of {batch.Count}", e) : e;
                if (conflict) logger.LogWarning("{Failure}; its sends answer 503", failure.Message);
                foreach (var entry in batch) entry.Done.TrySetException(failure);
                return null;
            }
        }
    }

    static async Task AnswerAfterAsync(Entry first, Entry repeat)
    {
        try
        {
            if (await first.Done.Task is null) repeat.Done.TrySetResult(null);
            else repeat.Done.TrySetException(new RepeatedKeyException());
        }
        catch (Exception e)
        {
            repeat.Done.TrySetException(e);
        }
    }

    /// <summary>Whether a send was queued within <paramref name="wait"/>.</summary>
    async Task<bool> NextSendWithinAsync(TimeSpan wait)
    {
        var next = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        // A full fence: the emptiness check must not be read before the flag is up, or a send
        // queued in between would signal nothing and wait out the linger.
        Interlocked.Exchange(ref idle, next);
        if (!queue.IsEmpty) next.TrySetResult();
        await next.Task.WaitAsync(wait).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        Volatile.Write(ref idle, null);
        return !queue.IsEmpty;
    }

    static async Task DisposeQuietlyAsync(MySqlConnection? connection)
    {
        if (connection is null) return;
        try { await connection.DisposeAsync(); }
        catch (MySqlException) { }   // already broken; the pool discards it
    }
}
