using System.Diagnostics;
using MySqlConnector;

namespace Ams.Infrastructure;

/// <summary>
/// A MariaDB that hangs rather than fails (paused, a stalled disk, a network dropping packets)
/// fails each request only after MySqlConnector's timeouts: 15 s to open a connection, 30 s a
/// command. An outside fault check measured every request of a node waiting its 15 s while the
/// outage was already logged. So once a request has run out of time on MariaDB, or a send batch
/// has waited 5 s for it (the send writer says so), new requests that need it
/// answer 503 at once, until a probe on a connection of its own (four a second, 1 s each) gets a
/// <c>SELECT 1</c> answered. A MariaDB that is down (refusing connections) fails fast by itself and
/// trips nothing. Requests already waiting keep waiting for their own timeouts.
/// </summary>
public sealed class MariaDbCircuit(MySqlDataSource db, ILogger<MariaDbCircuit> logger)
{
    static readonly TimeSpan ProbeInterval = TimeSpan.FromMilliseconds(250);
    static readonly string[] Exempt = ["/healthz", "/readyz", "/livez"];   // they check MariaDB themselves, within 2 s

    int open;
    long openedAt;
    long refused;

    /// <summary>Whether MariaDB is known not to answer right now.</summary>
    public bool IsOpen => Volatile.Read(ref open) == 1;

    /// <summary>A request or a connection open that ran out of time on MariaDB (not one it refused: that fails fast anyway).</summary>
    public static bool IsTimeout(Exception exception) => exception is MySqlException e
        && (e.ErrorCode == MySqlErrorCode.CommandTimeoutExpired || e.InnerException is MySqlException { ErrorCode: MySqlErrorCode.CommandTimeoutExpired });

    public void Trip(string why)
    {
        if (Interlocked.Exchange(ref open, 1) == 1) return;
        Volatile.Write(ref openedAt, Stopwatch.GetTimestamp());
        Interlocked.Exchange(ref refused, 0);
        logger.LogWarning("MariaDB is not answering ({Why}); requests that need it answer 503 at once until it answers a probe", why);
        _ = Task.Run(ProbeAsync);
    }

    async Task ProbeAsync()
    {
        // Not from the pool: a pooled connection to a hung server would hang its reset, and the
        // pool may be spent by the requests that are waiting.
        var probe = new MySqlConnectionStringBuilder(db.ConnectionString) { Pooling = false, ConnectionTimeout = 1, DefaultCommandTimeout = 1 }.ConnectionString;
        while (true)
        {
            await Task.Delay(ProbeInterval);
            try
            {
                await using var connection = new MySqlConnection(probe);
                await connection.OpenAsync();
                await using var select = new MySqlCommand("SELECT 1", connection);
                await select.ExecuteScalarAsync();
            }
            catch (MySqlException)
            {
                continue;
            }
            Volatile.Write(ref open, 0);
            logger.LogInformation("MariaDB answers again after {Seconds:F1} s; requests go through ({Refused} were refused at once meanwhile)",
                Stopwatch.GetElapsedTime(Volatile.Read(ref openedAt)).TotalSeconds, Interlocked.Read(ref refused));
            return;
        }
    }

    /// <summary>While open, every request but the health checks answers 503 before it waits for MariaDB.</summary>
    internal bool Refuses(HttpContext http)
    {
        if (!IsOpen || Array.IndexOf(Exempt, http.Request.Path.Value) >= 0) return false;
        Interlocked.Increment(ref refused);
        return true;
    }
}

public static class MariaDbCircuitMiddleware
{
    /// <summary>Thrown, so the exception handler answers it as it answers every outage (503, counted, one log line).</summary>
    public static IApplicationBuilder UseMariaDbCircuit(this IApplicationBuilder app)
    {
        var circuit = app.ApplicationServices.GetRequiredService<MariaDbCircuit>();
        return app.Use((http, next) => circuit.Refuses(http) ? throw new MariaDbNotAnsweringException() : next(http));
    }
}

/// <summary>A request refused at once while the <see cref="MariaDbCircuit"/> is open: 503, counted as a MariaDB outage.</summary>
public sealed class MariaDbNotAnsweringException() : Exception("MariaDB is not answering");
