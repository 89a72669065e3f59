using MySqlConnector;

namespace Ams.Infrastructure;

/// <summary>
/// Where the node's MariaDB connections come from. One server: its MySqlConnector pool, nothing
/// more. A fail-over host list (a Galera cluster, <c>Server=db1,db2,db3;LoadBalance=FailOver</c>):
/// MySqlConnector moves to the next host only when one refuses the connection; a host that hangs
/// (paused, or cut off by a network that drops packets) takes the whole connect timeout and the
/// open fails without trying the next (measured with MySqlConnector 2.6.2: <c>Server=hung,healthy</c>
/// failed after its 5 s every time). So each host has a pool of its own, a connection comes from
/// the first host in the list that answers the node's watch (<see cref="MariaDbWatch"/>, once a
/// second), and a host that does not is passed over until it answers again.
/// </summary>
public sealed class MariaDb : IAsyncDisposable
{
    public sealed class Host
    {
        internal Host(MySqlConnectionStringBuilder settings)
        {
            Name = settings.Server;
            // A pooled connection is handed out again as it was left, not reset: MariaDB 10.11
            // skips Galera's causal wait (wsrep_sync_wait) on a connection reset with
            // COM_RESET_CONNECTION (Galera issue #613; measured 12–50 stale reads in 2,000 across
            // two Galera nodes, none without the reset), and the reset is a round trip per open.
            // So nothing may leave session state on a connection (the send writer puts its
            // settings back itself), and the reset's other service, finding a connection the
            // server dropped, is the watch's and the outage log's: see ForgetConnectionsAsync.
            // And a command past its timeout closes its connection rather than cancel the query with a
            // KILL QUERY: MySqlConnector sends that on a new connection, synchronously, from its one
            // timer thread, so with a hung server each waits its own connect timeout after the
            // others' (requests on a paused test server waited over 60 s for their 3 s timeout).
            ConnectionString = new MySqlConnectionStringBuilder(settings.ConnectionString) { ConnectionReset = false, CancellationTimeout = -1 }.ConnectionString;
            // Not from the pool: a pooled connection to a hung server would hang its reset, and the
            // pool may be spent by the requests that are waiting. No cancellation round: a command
            // past its timeout would otherwise wait 2 s more for a KILL QUERY the hung server cannot
            // run (measured: the circuit opened 4.0–5.1 s into a pause with it, 2.3–2.8 s without).
            ProbeConnectionString = new MySqlConnectionStringBuilder(settings.ConnectionString)
                { Pooling = false, ConnectionTimeout = 1, DefaultCommandTimeout = 1, CancellationTimeout = -1 }.ConnectionString;
        }

        public string Name { get; }

        /// <summary>MySqlConnector's pool for it is the one for this string (the process's, by the string).</summary>
        internal string ConnectionString { get; }

        internal async ValueTask<MySqlConnection> OpenConnectionAsync(CancellationToken ct)
        {
            var connection = new MySqlConnection(ConnectionString);
            try
            {
                await connection.OpenAsync(ct);
                return connection;
            }
            catch
            {
                await connection.DisposeAsync();
                throw;
            }
        }

        /// <summary>
        /// Closes the pool's idle connections, and those in use as they come back: after the server
        /// went away (restarted, killed, cut off) they may be dead, and a connection that is not
        /// reset is not tried before it is handed out.
        /// </summary>
        internal Task ForgetConnectionsAsync() => MySqlConnection.ClearPoolAsync(new MySqlConnection(ConnectionString));

        /// <summary>For the watch, the circuit's probes and the health check: a connection of its own that gives up after 1 s.</summary>
        internal string ProbeConnectionString { get; }

        volatile bool passedOver, unreachable;

        /// <summary>Set by the watch while the host does not answer: connections come from the hosts after it.</summary>
        internal bool PassedOver
        {
            get => passedOver;
            set
            {
                passedOver = value;
                if (value) MarkHung();
                else MarkAnswering();
            }
        }

        CancellationTokenSource hung = new();

        /// <summary>Cancelled once the node knows the host hangs (passed over, or the circuit open); a new one once it answers.</summary>
        internal CancellationToken Hung => Volatile.Read(ref hung).Token;

        // Asynchronously: the callbacks end requests' waits, which must not run on the watch.
        internal void MarkHung() => _ = Volatile.Read(ref hung).CancelAsync();

        internal void MarkAnswering()
        {
            var current = Volatile.Read(ref hung);
            if (current.IsCancellationRequested) Interlocked.CompareExchange(ref hung, new CancellationTokenSource(), current);
        }

        /// <summary>
        /// Set by the watch while the host takes no connection in 1 s or refuses the question (a
        /// Galera node outside the primary component), rather than being slow to answer it. While a
        /// Galera node hangs, the others hold their queries too until they evict it, and every host
        /// is passed over; then the slow ones are tried first.
        /// </summary>
        internal bool Unreachable { get => unreachable; set => unreachable = value; }
    }

    public MariaDb(string connectionString)
    {
        var settings = new MySqlConnectionStringBuilder(connectionString);
        var names = settings.Server.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        // Each host of a list gets at most MaxConnectSeconds of the connect timeout: a request that
        // opens on a host just as it hangs, before the watch has noticed, tries the next after that
        // long instead of failing after the whole timeout (15 s by default).
        Hosts = names.Length > 1 && settings.LoadBalance == MySqlLoadBalance.FailOver
            ? names.Select(name => new Host(new MySqlConnectionStringBuilder(connectionString)
                { Server = name, ConnectionTimeout = Math.Min(settings.ConnectionTimeout, MaxConnectSeconds) })).ToArray()
            : [new Host(settings)];
    }

    const uint MaxConnectSeconds = 5;

    /// <summary>In the order of the list: one for a single server or a list MySqlConnector balances by itself.</summary>
    public IReadOnlyList<Host> Hosts { get; }

    /// <summary>
    /// An open connection from the first host that answers; the hosts passed over are tried last,
    /// when none does, those that take connections before those that do not.
    /// </summary>
    public async ValueTask<MySqlConnection> OpenConnectionAsync(CancellationToken ct = default)
    {
        if (Hosts.Count == 1) return await Hosts[0].OpenConnectionAsync(ct);
        MySqlException? failure = null;
        foreach (var host in InTurn())
            try
            {
                return await host.OpenConnectionAsync(ct);
            }
            catch (MySqlException e) when (e.ErrorCode == MySqlErrorCode.UnableToConnectToHost)
            {
                failure = e;   // down, or no answer within the connect timeout: the next host
            }
        throw failure!;
    }

    /// <summary>
    /// <paramref name="read"/> on a connection of its own, given up (<see cref="MariaDbNotAnsweringException"/>,
    /// so 503) as soon as the node knows that the connection's host hangs, rather than waiting as
    /// long as the host does, up to the command timeout: a paused Galera node held sends' Idempotency-Key
    /// lookups for the whole pause (9.5 s of an 8 s pause in the cluster drill, 21.6 s of 20 s), while the
    /// send batches on it answered after 5 s. For reads, and writes that a repeat of the request finds
    /// done (find or create): what is given up goes on in the background until MariaDB answers or its
    /// timeout ends it, so a write in it may still be stored after the 503.
    /// </summary>
    public async Task<T> ReadUnlessHungAsync<T>(Func<MySqlConnection, Task<T>> read, CancellationToken ct = default)
    {
        // The host the connection is likely to come from, until it has come from one. One already
        // known to hang is the best there is (every host was passed over): it is waited for.
        static CancellationToken Watch(Host host) => host.Hung is { IsCancellationRequested: false } hung ? hung : CancellationToken.None;
        var watching = new Lock();
        var watched = Watch(Hosts.Count == 1 ? Hosts[0] : InTurn()[0]);
        CancellationToken Watched() { lock (watching) return watched; }
        var running = RunAsync();
        while (true)
        {
            var hung = Watched();
            try
            {
                return await running.WaitAsync(hung);
            }
            catch (OperationCanceledException) when (hung.IsCancellationRequested)
            {
                if (hung != Watched()) continue;   // the connection came from another host
                _ = running.ContinueWith(static t => t.Exception, TaskContinuationOptions.OnlyOnFaulted | TaskContinuationOptions.ExecuteSynchronously);
                throw new MariaDbNotAnsweringException();
            }
        }

        async Task<T> RunAsync()
        {
            await using var connection = await OpenConnectionAsync(ct);
            var host = Hosts.Count == 1 ? Hosts[0] : Hosts.FirstOrDefault(host => host.Name == connection.DataSource);
            lock (watching) watched = host is null ? CancellationToken.None : Watch(host);
            return await read(connection);
        }
    }

    /// <summary>The hosts in the order connections try them: those that answer, then the slow, then the rest.</summary>
    internal List<Host> InTurn()
    {
        var order = Hosts.Where(host => !host.PassedOver).ToList();
        order.AddRange(Hosts.Where(host => host.PassedOver && !host.Unreachable));
        order.AddRange(Hosts.Except(order));
        return order;
    }

    /// <summary>Every host's <see cref="Host.ForgetConnectionsAsync"/>.</summary>
    internal async Task ForgetConnectionsAsync()
    {
        foreach (var host in Hosts) await host.ForgetConnectionsAsync();
    }

    public async ValueTask DisposeAsync()
    {
        // Its idle connections would stay open on the server until the process ends.
        await ForgetConnectionsAsync();
    }
}
