using MySqlConnector;

namespace Ams.Infrastructure;

/// <summary>
/// Transactions that MariaDB refused with a deadlock error run again. On a Galera cluster that is
/// how a commit fails that conflicts with a write set certified first on another node (or a
/// transaction aborted under it for one being applied); on one server, a deadlock. Either way the
/// transaction was rolled back whole, provided nothing of it ran outside it: every transaction
/// sends one statement per command, except the send writer, which keeps autocommit off and
/// checks its batch before a COMMIT of its own (SendMessage.Sql). Sends have their own retry in
/// the group-commit writer; <see cref="UseConflictRetry"/> covers every other write request.
/// </summary>
public static class ConflictRetry
{
    /// <summary>
    /// How often a refused transaction is run: a node can lose the race many times in a row while
    /// the others keep writing to the same rows, so up to ~4 s of backing off (<see cref="BackOff"/>).
    /// </summary>
    public const int Attempts = 40;

    /// <summary>
    /// A write that lost its conflict on every attempt (other writes to the same rows kept winning):
    /// rolled back each time, so nothing of it is stored. 503 with its own detail and one warning
    /// line, not a fault's stack trace (an outside check found eleven in one node's log under a
    /// multi-writer Galera load, each answered as "a backing service is unreachable").
    /// </summary>
    public sealed class StillConflictingException(string what, Exception last)
        : Exception($"{what} still conflicting after {Attempts} attempts", last);

    /// <summary>A deadlock error: the transaction was rolled back and may simply run again.</summary>
    public static bool IsConflict(Exception e) => e is MySqlException { ErrorCode: MySqlErrorCode.LockDeadlock };

    /// <summary>A random wait that grows with the attempt, to 200 ms: writers that collided do not collide again at once.</summary>
    public static TimeSpan BackOff(int attempt) => TimeSpan.FromMilliseconds(Random.Shared.Next(Math.Min(1 << Math.Min(attempt, 8), 200)));

    /// <summary>
    /// True the first time a request asks to count against <paramref name="budget"/> (a throttle),
    /// false when a run of the same request after a conflict asks again: the first run counted it,
    /// and a retry must not spend the user's budget twice.
    /// </summary>
    public static bool FirstCount(HttpContext http, string budget)
    {
        if (http.Items[CountedKey] is not HashSet<string> counted) http.Items[CountedKey] = counted = [];
        return counted.Add(budget);
    }

    static readonly object CountedKey = new();

    /// <summary>Runs a write request again, whole, when its transaction lost a conflict, as long as its answer has not started.</summary>
    public static IApplicationBuilder UseConflictRetry(this IApplicationBuilder app) => app.Use((http, next) =>
        // Reads do not conflict, and a streamed upload cannot be read twice. Passed through
        // without a state machine held for the request's lifetime (see RequestLimits.UseBodySizeLimit).
        HttpMethods.IsGet(http.Request.Method) || HttpMethods.IsHead(http.Request.Method)
            || http.GetEndpoint()?.Metadata.GetMetadata<StreamedBody>() is not null
            ? next(http)
            : RetryingAsync(http, next));

    static async Task RetryingAsync(HttpContext http, RequestDelegate next)
    {
        // Every other body is at most RequestLimits.MaxBodyBytes: kept in memory to be read again.
        http.Request.EnableBuffering(bufferThreshold: (int)RequestLimits.MaxBodyBytes + 1);
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await next(http);
                return;
            }
            catch (Exception e) when (IsConflict(e) && attempt == Attempts && !http.Response.HasStarted)
            {
                var failure = new StillConflictingException($"{http.Request.Method} {http.Request.Path}", e);
                http.RequestServices.GetRequiredService<ILoggerFactory>().CreateLogger(typeof(ConflictRetry).FullName!)
                    .LogWarning("{Failure}; answered 503", failure.Message);
                throw failure;
            }
            catch (Exception e) when (IsConflict(e) && attempt < Attempts && !http.Response.HasStarted)
            {
                AmsMetrics.ConflictRetries.Add(1, new KeyValuePair<string, object?>("operation", "request"));
                http.Response.Clear();
                http.Request.Body.Position = 0;
                await Task.Delay(BackOff(attempt), http.RequestAborted);
            }
        }
    }
}
