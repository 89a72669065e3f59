namespace Ams.Infrastructure;

/// <summary>A setting the server cannot run with: the message says which and how to fix it, and is all an operator sees.</summary>
public sealed class ConfigurationException(string message) : InvalidOperationException(message);

/// <summary>
/// What stops the process before it serves: bad configuration, an unreachable database at start,
/// a port in use. The operator gets the message alone on stderr and exit code 1, never a stack
/// trace or an abort (exit 134/139 in a container, where PID 1 cannot abort cleanly).
/// </summary>
public static class StartupFailure
{
    public const int ExitCode = 1;

    /// <summary>
    /// Set by in-process hosts (the integration tests start Program through Alba): they want the
    /// exception itself, as a test failure or an expected refusal, not an exit code.
    /// </summary>
    public static bool Propagate { get; set; }

    /// <summary>Set once the server serves. Until then a failed start is <see cref="Report"/>'s to tell:
    /// the host's own report of it (a port in use) is a stack trace.</summary>
    public static bool Serving { get => serving; set => serving = value; }
    static volatile bool serving;

    public const string HostCategory = "Microsoft.Extensions.Hosting.Internal.Host";

    public static int Report(Exception e, TextWriter stderr)
    {
        stderr.WriteLine($"AMS cannot start: {Explain(e)}");
        stderr.Flush();
        return ExitCode;
    }

    static string Explain(Exception e)
    {
        // The Redis client's own message is some 700 characters of its diagnostics, with the cause buried in it.
        for (var inner = e; inner is not null; inner = inner.InnerException)
            if (inner is StackExchange.Redis.RedisConnectionException redis)
            {
                // Its inner exceptions are the client's state dumps too, down to the socket's or the server's own word.
                var root = redis.GetBaseException();
                var cause = root is System.Net.Sockets.SocketException or StackExchange.Redis.RedisServerException ? $" ({root.Message.TrimEnd('.')})" : "";
                return $"Redis did not take the connection{cause}. Check ConnectionStrings__Redis (host, port, password) and that Redis runs there.";
            }
            else if (inner is MySqlConnector.MySqlException { ErrorCode: MySqlConnector.MySqlErrorCode.UnknownDatabase
                         or MySqlConnector.MySqlErrorCode.AccessDenied or MySqlConnector.MySqlErrorCode.DatabaseAccessDenied } refused)
                return $"{refused.Message.TrimEnd('.')}. Check ConnectionStrings__MariaDb (database, user, password): the database must exist and the user may create tables in it.";
            else if (inner is ArgumentOutOfRangeException { ParamName: "port" })
                return "A URL to serve on names a port outside 1–65535 (ASPNETCORE_URLS, ASPNETCORE_HTTP_PORTS).";
        var messages = new List<string>();
        // Kestrel's bind failure wraps the socket's own: "… address already in use." then "Address already in use".
        for (var inner = e; inner is not null; inner = inner.InnerException)
            if (!messages.Any(m => m.Contains(inner.Message.TrimEnd('.'), StringComparison.OrdinalIgnoreCase))) messages.Add(inner.Message);
        if (IsAddressInUse(e))
            messages.Add("Another process serves that address: stop it, or serve on another with ASPNETCORE_URLS (for example http://localhost:8093).");
        return string.Join(" ", messages);
    }

    static bool IsAddressInUse(Exception e)
    {
        for (var inner = e; inner is not null; inner = inner.InnerException)
            if (inner is Microsoft.AspNetCore.Connections.AddressInUseException
                || inner is System.Net.Sockets.SocketException { SocketErrorCode: System.Net.Sockets.SocketError.AddressAlreadyInUse })
                return true;
        return false;
    }
}
