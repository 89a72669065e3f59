using System.Diagnostics;
using MySqlConnector;

namespace Ams.Infrastructure;

/// <summary>Endpoint metadata: the endpoint never touches MariaDB, so a hung MariaDB does not refuse it.</summary>
public sealed class WithoutMariaDb;

/// <summary>
/// A MariaDB that hangs rather than fails (paused, a stalled disk, a network dropping packets)
/// fails each request only after MySqlConnector's timeouts: 15 s to open a connection, 30 s a
/// command. An outside fault check measured every request of a node waiting its 15 s while the
/// outage was already logged. So when <see cref="MariaDbWatch"/>'s question goes unanswered, a
/// request runs out of time on MariaDB, or a send batch has waited 5 s for it, a probe on a connection of its own asks
/// <c>SELECT 1</c> with 1 s to answer: a slow query, a lock wait or a spent pool is no hang, and
/// a probe answered leaves everything as it was. Unanswered, the circuit opens: new requests that
/// need MariaDB answer 503 at once until a probe (four a second) is answered again. A MariaDB that
/// is down (refusing connections) fails fast by itself and trips nothing; requests already waiting
/// keep waiting for their own timeouts. Behind a proxy or a host list, a probe that reaches a
/// healthy server keeps the circuit closed: refusing every request for one hung server of several
/// would be worse than the waits on it.
/// </summary>
public sealed class MariaDbCircuit(MySqlDataSource db, IHostApplicationLifetime lifetime, ILogger<MariaDbCircuit> logger)
{
    static readonly TimeSpan ProbeInterval = TimeSpan.FromMilliseconds(250);

    int open;
    long openedAt;
    long refused;
    readonly Lock gate = new();
    Task<bool>? suspicion;

    /// <summary>
    /// For the probes and the watch: a connection that gives up after 1 s. Not from the pool: a
    /// pooled connection to a hung server would hang its reset, and the pool may be spent by the
    /// requests that are waiting. No cancellation round: a command past its timeout would otherwise
    /// wait 2 s more for a KILL QUERY the hung server cannot run (measured: the circuit opened
    /// 4.0–5.1 s into a pause with it, 2.3–2.8 s without).
    /// </summary>
    internal string ProbeConnectionString { get; } = new MySqlConnectionStringBuilder(db.ConnectionString)
        { Pooling = false, ConnectionTimeout = 1, DefaultCommandTimeout = 1, CancellationTimeout = -1 }.ConnectionString;

    /// <summary>Whether MariaDB is known not to answer right now.</summary>
    public bool IsOpen => Volatile.Read(ref open) == 1;

    /// <summary>A request or a connection open that ran out of time on MariaDB (not one it refused: that fails fast anyway).</summary>
    public static bool IsTimeout(Exception exception) => exception is MySqlException e
        && (e.ErrorCode == MySqlErrorCode.CommandTimeoutExpired || e.InnerException is MySqlException { ErrorCode: MySqlErrorCode.CommandTimeoutExpired });

    /// <summary>
    /// Something waited too long for MariaDB: a probe decides whether it hangs. True when the circuit
    /// is open (now or already); suspicions at the same time share one probe.
    /// </summary>
    public Task<bool> SuspectAsync(string why)
    {
        // Looked at again under the lock: a probe that opened the circuit and let go of its
        // suspicion just now must not be followed by a second one (a second opening, probe loop
        // and pair of log lines).
        lock (gate) return IsOpen ? Task.FromResult(true) : suspicion ??= ConfirmAsync(why);
    }

    async Task<bool> ConfirmAsync(string why)
    {
        // Off the caller's thread first: finished synchronously inside SuspectAsync's lock, the
        // finally below would clear the field before ??= stored the finished task in it for good.
        await Task.Yield();
        try
        {
            if (await AnswersAsync()) return false;
            Interlocked.Exchange(ref refused, 0);
            Volatile.Write(ref openedAt, Stopwatch.GetTimestamp());
            Volatile.Write(ref open, 1);
            logger.LogWarning("MariaDB is not answering ({Why}, and a probe had no answer in 1 s); requests that need it answer 503 at once until it answers again", why);
            _ = Task.Run(ProbeUntilAnsweredAsync);
            return true;
        }
        finally
        {
            lock (gate) suspicion = null;
        }
    }

    async Task<bool> AnswersAsync()
    {
        try
        {
            await using var connection = new MySqlConnection(ProbeConnectionString);
            await connection.OpenAsync(lifetime.ApplicationStopping);
            await using var select = new MySqlCommand("SELECT 1", connection);
            await select.ExecuteScalarAsync(lifetime.ApplicationStopping);
            return true;
        }
        catch (Exception e) when (e is not OperationCanceledException || !lifetime.ApplicationStopping.IsCancellationRequested)
        {
            // Whatever the driver throws, the question is only whether MariaDB answered.
            return false;
        }
    }

    async Task ProbeUntilAnsweredAsync()
    {
        try
        {
            do await Task.Delay(ProbeInterval, lifetime.ApplicationStopping);
            while (!await AnswersAsync());
        }
        catch (OperationCanceledException)
        {
            return;   // the node is stopping
        }
        var (seconds, count) = (Stopwatch.GetElapsedTime(Volatile.Read(ref openedAt)).TotalSeconds, Interlocked.Read(ref refused));
        Volatile.Write(ref open, 0);
        logger.LogInformation("MariaDB answers again after {Seconds:F1} s; requests go through ({Refused} were refused at once meanwhile)", seconds, count);
    }

    /// <summary>
    /// While open, a request that needs MariaDB is refused before it waits for it. A request no
    /// endpoint matched goes on to its 404 (a mistyped path is not the database's fault).
    /// </summary>
    internal bool Refuses(HttpContext http)
    {
        if (!IsOpen || http.GetEndpoint() is not { } endpoint || endpoint.Metadata.GetMetadata<WithoutMariaDb>() is not null) return false;
        Interlocked.Increment(ref refused);
        return true;
    }
}

public static class MariaDbCircuitMiddleware
{
    /// <summary>
    /// A page for a browser, else thrown, so the exception handler answers it as it answers every
    /// outage (503 problem details with Retry-After, no log line of its own).
    /// </summary>
    public static IApplicationBuilder UseMariaDbCircuit(this IApplicationBuilder app)
    {
        var circuit = app.ApplicationServices.GetRequiredService<MariaDbCircuit>();
        return app.Use((http, next) =>
        {
            if (!circuit.Refuses(http)) return next(http);
            if (!Layout.WantsPage(http)) throw new MariaDbNotAnsweringException();
            Problem.RetryAfter(http, TimeSpan.FromSeconds(5));
            return Layout.SendErrorPageAsync(http, StatusCodes.Status503ServiceUnavailable, "Service temporarily unavailable",
                "The database is not answering. Try again in a moment.");
        });
    }
}

/// <summary>
/// Asks MariaDB <c>SELECT 1</c> once a second on a connection of its own, with 1 s to answer: a
/// hang shows within seconds even when no send batch is on the wire and no request has run out of
/// time yet (an outside check found sends waiting on their Idempotency-Key lookup for 10 s, with
/// the writer idle and nothing opening the circuit). A question not answered in time makes the
/// circuit probe; a MariaDB that refuses connections is down, not hung, and suspects nothing.
/// </summary>
public sealed class MariaDbWatch(MariaDbCircuit circuit, ILogger<MariaDbWatch> logger) : BackgroundService
{
    static readonly TimeSpan Interval = TimeSpan.FromSeconds(1);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        MySqlConnection? connection = null;
        try
        {
            while (!stoppingToken.IsCancellationRequested)
            {
                await Task.Delay(Interval, stoppingToken);
                if (circuit.IsOpen) continue;   // its own probe is on it
                try
                {
                    if (connection is null)
                    {
                        connection = new MySqlConnection(circuit.ProbeConnectionString);
                        await connection.OpenAsync(stoppingToken);
                    }
                    await using var select = new MySqlCommand("SELECT 1", connection);
                    await select.ExecuteScalarAsync(stoppingToken);
                }
                catch (Exception e) when (e is not OperationCanceledException || !stoppingToken.IsCancellationRequested)
                {
                    if (connection is not null) await connection.DisposeAsync();
                    connection = null;
                    if (MariaDbCircuit.IsTimeout(e)) _ = circuit.SuspectAsync("it did not answer the node's watch in 1 s");
                    else logger.LogDebug("MariaDB watch: {Error}", e.Message);
                }
            }
        }
        catch (OperationCanceledException) { }
        finally
        {
            if (connection is not null) await connection.DisposeAsync();
        }
    }
}

/// <summary>A request refused at once while the <see cref="MariaDbCircuit"/> is open: 503, which the circuit counts and logs.</summary>
public sealed class MariaDbNotAnsweringException() : Exception("MariaDB is not answering");
