using System.Collections.Concurrent;
using MySqlConnector;
using StackExchange.Redis;

namespace Ams.Infrastructure;

/// <summary>
/// While MariaDB or Redis is unreachable, every request that needs it answers 503 (see
/// <see cref="ProblemResponses"/>). The log gets one line when such an outage starts and one when
/// it ends, with how many requests it refused, instead of a stack trace per request: hundreds a
/// second would bury everything else an operator needs then.
/// </summary>
public sealed class Outages(MariaDb db, RedisCircuit redisCircuit, MariaDbCircuit mariaDbCircuit, TimeProvider time, ILogger<Outages> logger)
{
    public const string MariaDb = "MariaDB";
    public const string Redis = "Redis";
    static readonly TimeSpan ProbeInterval = TimeSpan.FromSeconds(1);

    sealed class Outage(DateTimeOffset since)
    {
        public readonly DateTimeOffset Since = since;
        public long Refused;
        public long LastRefusedAt;   // TimeProvider timestamp; for held locks, which no probe can see end
    }

    // Lock waits that ran out are MariaDB answering, not gone: their own state, without forgetting
    // the pool or saying MariaDB is unreachable (an outside check read a Galera node's lock waits as
    // an outage). It is over once no request has waited out a lock for this long.
    const string HeldLocks = "held locks";
    static readonly TimeSpan LocksQuiet = TimeSpan.FromSeconds(10);   // longer than a send's lock wait and its retry (6 s)

    readonly ConcurrentDictionary<string, Outage> current = new();

    /// <summary>Whether <paramref name="exception"/> is a backing service being unreachable; if so the refusal is counted.</summary>
    public bool Refused(Exception exception)
    {
        if (BackendOf(exception) is not { } backend) return false;
        // Refused by the open circuit, which counts and logs them itself.
        if (exception is MariaDbNotAnsweringException) return true;
        if (exception is MySqlException { ErrorCode: MySqlErrorCode.LockWaitTimeout })
        {
            LockHeld(exception);
            return true;
        }
        if (MariaDbCircuit.IsTimeout(exception)) _ = mariaDbCircuit.SuspectAsync("a request ran out of time");
        var outage = current.GetOrAdd(backend, _ => new Outage(time.GetUtcNow()));
        if (Interlocked.Increment(ref outage.Refused) == 1)
        {
            // The first request to meet a dead connection (a server that restarted) is the last:
            // the pool's others are as dead, and pooled connections are not tried before use.
            if (backend == MariaDb) _ = db.ForgetConnectionsAsync();
            logger.LogWarning("{Backend} is unreachable ({Error}); requests that need it answer 503 until it is back", backend, Ams.Infrastructure.Redis.Brief(exception));
            _ = Task.Run(() => WatchAsync(backend, outage));
        }
        return true;
    }

    void LockHeld(Exception exception)
    {
        var held = current.GetOrAdd(HeldLocks, _ => new Outage(time.GetUtcNow()));
        Volatile.Write(ref held.LastRefusedAt, time.GetTimestamp());
        if (Interlocked.Increment(ref held.Refused) != 1) return;
        logger.LogWarning("A MariaDB lock was held past the lock wait limit ({Error}); requests that wait for a held lock answer 503 until none has for {Seconds:F0} s",
            exception.Message, LocksQuiet.TotalSeconds);
        _ = Task.Run(async () =>
        {
            while (time.GetElapsedTime(Volatile.Read(ref held.LastRefusedAt)) < LocksQuiet) await Task.Delay(ProbeInterval, time);
            current.TryRemove(HeldLocks, out _);
            logger.LogInformation("No request has waited out a MariaDB lock for {Seconds:F0} s; {Refused} requests were refused for held locks in {Total:F1} s",
                LocksQuiet.TotalSeconds, Interlocked.Read(ref held.Refused), (time.GetUtcNow() - held.Since).TotalSeconds);
        });
    }

    /// <summary>The backend an exception says is unreachable, or null for anything else (an error the server returned is a fault to log in full).</summary>
    static string? BackendOf(Exception exception) => exception switch
    {
        // MySqlConnector's own errors (no SQLSTATE): cannot connect (1042), connection lost, timeouts.
        MySqlException { SqlState: null } or MariaDbNotAnsweringException => MariaDb,
        // A connection the server closed, met outside a command (as MySqlConnector's own BEGIN met
        // it, reading its reply itself): a restarted server, found by the first request to take a
        // connection from before.
        MySqlEndOfStreamException => MariaDb,
        // A Galera node out of the cluster's primary component refuses every query until it rejoins
        // ("WSREP has not yet prepared node for application use"), and one rejoining holds locks
        // while it catches up: the server's errors, but its state, not a fault of the request.
        // An outside check of a paused Galera node counted 150 stack traces of these. A COMMIT on a
        // node that lost the primary component while the transaction ran cannot replicate, and fails
        // ("Error while appending streaming replication fragment(provider status: Not connected to
        // Primary Component)", ER_ERROR_DURING_COMMIT): nothing of it is stored, as with the others.
        MySqlException { ErrorCode: MySqlErrorCode.UnknownCommand or MySqlErrorCode.LockWaitTimeout or MySqlErrorCode.ErrorDuringCommit } => MariaDb,
        RedisConnectionException or RedisTimeoutException or ReplicaShortException => Redis,
        _ => null,
    };

    /// <summary>MariaDB's own error numbers; MySqlConnector's client-side ones (lost connection, timeouts) are 0 or 2000–2999.</summary>
    public static bool IsServerError(MySqlErrorCode code) => (int)code is >= 1000 and < 2000 or >= 3000;

    async Task WatchAsync(string backend, Outage outage)
    {
        while (true)
        {
            await Task.Delay(ProbeInterval, time);
            try
            {
                if (backend == MariaDb)
                {
                    await using var connection = await db.OpenConnectionAsync();
                    await using var ping = new MySqlCommand("SELECT 1", connection);
                    await ping.ExecuteScalarAsync();
                }
                // A master marked by the circuit is an outage still (on a Redis Cluster the others
                // answer a PING: one hung shard read as an outage ending and starting every second).
                else if (redisCircuit.IsOpen) continue;
                else await redisCircuit.PingAsync(CancellationToken.None);
            }
            catch (Exception e) when (BackendOf(e) is not null)
            {
                continue;
            }
            current.TryRemove(backend, out _);
            // Timed from the first refusal, not from the failure itself: with fallbacks (sessions this
            // node knows, a throttle that lapses) Redis can be gone a while before a request needs it.
            logger.LogInformation("{Backend} is reachable again, {Seconds:F1} s after the first request it failed; {Refused} requests were refused meanwhile",
                backend, (time.GetUtcNow() - outage.Since).TotalSeconds, Interlocked.Read(ref outage.Refused));
            return;
        }
    }
}
