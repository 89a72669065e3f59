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
/// keep waiting for their own timeouts. Behind a proxy or a fail-over host list (see <see cref="MariaDb"/>),
/// a probe that reaches a healthy server keeps the circuit closed: refusing every request for one hung server of several
/// would be worse than the waits on it.
/// </summary>
public sealed class MariaDbCircuit(MariaDb db, IHostApplicationLifetime lifetime, ILogger<MariaDbCircuit> logger)
{
    static readonly TimeSpan ProbeInterval = TimeSpan.FromMilliseconds(250);

    int open;
    long openedAt;
    long refused;
    readonly Lock gate = new();
    Task<bool>? suspicion;

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
            foreach (var host in db.Hosts) host.MarkHung();
            logger.LogWarning("MariaDB is not answering ({Why}, and a probe had no answer in 1 s); requests that need it answer 503 at once until it answers again", why);
            _ = Task.Run(ProbeUntilAnsweredAsync);
            return true;
        }
        finally
        {
            lock (gate) suspicion = null;
        }
    }

    /// <summary>Whether a host answers <c>SELECT 1</c> within 1 s (any of a fail-over list: the node's connections come from it).</summary>
    async Task<bool> AnswersAsync()
    {
        var answers = await Task.WhenAll(db.Hosts.Select(host => AnswersAsync(host, lifetime.ApplicationStopping)));
        return answers.Contains(true);
    }

    internal static async Task<bool> AnswersAsync(MariaDb.Host host, CancellationToken ct)
    {
        try
        {
            await AskAsync(host, ct);
            return true;
        }
        catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
        {
            // Whatever the driver throws, the question is only whether MariaDB answered.
            return false;
        }
    }

    /// <summary><c>SELECT 1</c> on a connection of its own (<see cref="MariaDb.Host.ProbeConnectionString"/>); throws what the driver throws.</summary>
    internal static async Task AskAsync(MariaDb.Host host, CancellationToken ct)
    {
        await using var connection = new MySqlConnection(host.ProbeConnectionString);
        await connection.OpenAsync(ct);
        await using var select = new MySqlCommand("SELECT 1", connection);
        await select.ExecuteScalarAsync(ct);
    }

    /// <summary>
    /// <see cref="AskAsync"/> of the hosts in the order connections take them, until one answers
    /// (a hung host the node passed over last, or every question would wait its 1 s first); throws
    /// the last host's error when none does.
    /// </summary>
    internal static async Task AskInTurnAsync(MariaDb db, CancellationToken ct)
    {
        var hosts = db.InTurn();
        for (var i = 0; ; i++)
            try
            {
                await AskAsync(hosts[i], ct);
                return;
            }
            catch (MySqlException) when (i < hosts.Count - 1)
            {
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
        // Connections from before the hang may be dead by now (a server killed while it hung).
        await db.ForgetConnectionsAsync();
        foreach (var host in db.Hosts.Where(host => !host.PassedOver)) host.MarkAnswering();
        Volatile.Write(ref open, 0);
        logger.LogInformation("MariaDB answers again after {Seconds:F1} s; requests go through ({Refused} were refused at once meanwhile)", seconds, count);
    }

    /// <summary>
    /// While open, a request that needs MariaDB is refused before it waits for it. A request no
    /// route matched goes on to its 404, or routing's own 405 endpoint for a wrong method (a
    /// mistyped call is not the database's fault).
    /// </summary>
    internal bool Refuses(HttpContext http)
    {
        if (!IsOpen || http.GetEndpoint() is not RouteEndpoint endpoint || endpoint.Metadata.GetMetadata<WithoutMariaDb>() is not null) return false;
        Interlocked.Increment(ref refused);
        return true;
    }

    /// <summary>
    /// For the one path of a <see cref="WithoutMariaDb"/> request that needs MariaDB after all (a
    /// personal access token's logout): refused at once while open, as the middleware refuses.
    /// </summary>
    public void ThrowIfOpen()
    {
        if (!IsOpen) return;
        Interlocked.Increment(ref refused);
        throw new MariaDbNotAnsweringException();
    }
}

public static class MariaDbCircuitMiddleware
{
    /// <summary>What a browser's page says while MariaDB does not answer, refused here or in the middle of the request.</summary>
    public const string NotAnswering = "The database is not answering. Try again in a moment.";

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
            return Layout.SendErrorPageAsync(http, StatusCodes.Status503ServiceUnavailable, "Service temporarily unavailable", NotAnswering);
        });
    }
}

/// <summary>
/// Asks MariaDB <c>SELECT 1</c> once a second on a connection of its own, with 1 s to answer: a
/// hang shows within seconds even when no send batch is on the wire and no request has run out of
/// time yet (an outside check found sends waiting on their Idempotency-Key lookup for 10 s, with
/// the writer idle and nothing opening the circuit). A question not answered in time makes the
/// circuit probe; a MariaDB that refuses connections is down, not hung, and suspects nothing.
/// With a fail-over host list it asks every host, and a host that does not answer is passed over
/// by the node's connections (<see cref="MariaDb"/>) until it answers again; the circuit is asked
/// only when no host answers.
/// </summary>
public sealed class MariaDbWatch(MariaDb db, MariaDbCircuit circuit, ILogger<MariaDbWatch> logger) : BackgroundService
{
    static readonly TimeSpan Interval = TimeSpan.FromSeconds(1);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var connections = new MySqlConnection?[db.Hosts.Count];
        var failing = new bool[db.Hosts.Count];
        try
        {
            while (!stoppingToken.IsCancellationRequested)
            {
                await Task.Delay(Interval, stoppingToken);
                if (circuit.IsOpen) continue;   // its own probe is on it
                var errors = await Task.WhenAll(Enumerable.Range(0, db.Hosts.Count).Select(AskAsync));
                if (db.Hosts.Count > 1)
                    for (var i = 0; i < errors.Length; i++)
                        Mark(db.Hosts[i], errors[i]);
                if (errors.All(e => e is not null))
                {
                    if (errors.Any(e => MariaDbCircuit.IsTimeout(e!))) _ = circuit.SuspectAsync("it did not answer the node's watch in 1 s");
                    else logger.LogDebug("MariaDB watch: {Error}", errors[0]!.Message);
                }
            }
        }
        catch (OperationCanceledException) { }
        finally
        {
            foreach (var connection in connections)
                if (connection is not null) await connection.DisposeAsync();
        }

        async Task<Exception?> AskAsync(int i)
        {
            var host = db.Hosts[i];
            var opened = connections[i] is not null;
            try
            {
                if (!opened)
                {
                    connections[i] = new MySqlConnection(host.ProbeConnectionString);
                    await connections[i]!.OpenAsync(stoppingToken);
                    opened = true;
                }
                await using var select = new MySqlCommand("SELECT 1", connections[i]);
                await select.ExecuteScalarAsync(stoppingToken);
                host.Unreachable = false;
                await NowFailingAsync(false);
                return null;
            }
            catch (Exception e) when (e is not OperationCanceledException || !stoppingToken.IsCancellationRequested)
            {
                if (connections[i] is { } broken) await broken.DisposeAsync();
                connections[i] = null;
                // A host that takes no connection, or refuses the question (a Galera node outside the
                // primary component), cannot serve; one that is slow to answer may yet.
                host.Unreachable = !opened || !MariaDbCircuit.IsTimeout(e);
                await NowFailingAsync(true);
                return e;
            }

            // The pool's connections may not have outlived the change (a server killed, restarted,
            // or killed while it hung), and nothing tries one before a request gets it.
            async Task NowFailingAsync(bool failed)
            {
                if (failing[i] == failed) return;
                failing[i] = failed;
                await host.ForgetConnectionsAsync();
            }
        }
    }

    void Mark(MariaDb.Host host, Exception? error)
    {
        if (host.PassedOver == error is not null) return;
        host.PassedOver = error is not null;
        if (error is not null)
            logger.LogWarning("MariaDB server {Host} is not answering ({Error}); the node's connections come from the next server in the list until it does",
                host.Name, MariaDbCircuit.IsTimeout(error) ? "no answer in 1 s" : error.Message);
        else
            logger.LogInformation("MariaDB server {Host} answers again; the node's connections come from it again in the list's order", host.Name);
    }
}

/// <summary>A request refused at once while the <see cref="MariaDbCircuit"/> is open: 503, which the circuit counts and logs.</summary>
public sealed class MariaDbNotAnsweringException() : Exception("MariaDB is not answering");
