using System.Diagnostics;
using System.Security.Cryptography;

namespace Ams.Testing;

/// <summary>
/// A MariaDB Galera Cluster of private mariadbd nodes (Debian's galera-4) on loopback. Node i
/// listens on 127.0.0.i, all on one port, so one MySqlConnector connection string can name them
/// all (<see cref="ConnectionString"/>: <c>Server=127.0.0.1,127.0.0.2,…</c>). The first node
/// bootstraps the cluster; the others join one at a time by rsync state transfer.
/// </summary>
public sealed class GaleraCluster : IAsyncDisposable
{
    private const string UserName = "ams";
    private static readonly TimeSpan JoinTimeout = TimeSpan.FromSeconds(90);
    // Short: the cluster's directory is deleted right after, so a clean shutdown keeps nothing. A
    // node resumed from a pause as the others stop may be rejoining them, and once waited out all of
    // a 30 s grace in CI (`just cluster`'s Ctrl-C then took 33 s).
    private static readonly TimeSpan StopGrace = TimeSpan.FromSeconds(10);

    private readonly string _baseDir;
    private readonly string _password;
    private readonly Node[] _nodes;
    private int _disposed;

    private sealed class Node(int index, string dir)
    {
        public int Index { get; } = index;
        public string Dir { get; } = dir;
        public string Address => $"127.0.0.{Index + 1}";
        public string Socket => Path.Combine(Dir, "s.sock");
        public int GcommPort { get; init; }
        public int IstPort { get; set; }
        public int SstPort { get; set; }
        public ServerProcess? Process { get; set; }
    }

    private GaleraCluster(string baseDir, int port, string password, Node[] nodes)
    {
        _baseDir = baseDir;
        Port = port;
        _password = password;
        _nodes = nodes;
    }

    /// <summary>The SQL port every node listens on, each on its own loopback address.</summary>
    public int Port { get; }

    /// <summary>How many nodes the cluster has.</summary>
    public int Size => _nodes.Length;

    public static async Task<GaleraCluster> StartAsync(int size = 3, CancellationToken ct = default)
    {
        var baseDir = Directory.CreateTempSubdirectory("ams-galera-").FullName;
        var nodes = new Node[size];
        for (var i = 0; i < size; i++)
        {
            var dir = Directory.CreateDirectory(Path.Combine(baseDir, $"n{i + 1}")).FullName;
            Directory.CreateDirectory(Path.Combine(dir, "tmp"));
            await MariaDbServer.CopyDirectoryAsync(await MariaDbServer.DataDirTemplate.Value, Path.Combine(dir, "data"), ct);
            nodes[i] = new Node(i, dir) { GcommPort = FreePort.Next(), IstPort = FreePort.Next(), SstPort = FreePort.Next() };
        }
        // The rsync state transfer runs an rsync daemon, which drops root for "nobody" and then
        // cannot write the datadir: as root, the nodes run as the package's mysql user.
        if (Environment.UserName == "root")
        {
            await ProcessRunner.RunAsync("chown", ["-R", "mysql:mysql", baseDir], ct);
        }
        var cluster = new GaleraCluster(baseDir, FreePort.Next(), Convert.ToHexString(RandomNumberGenerator.GetBytes(16)), nodes);
        try
        {
            await cluster.StartNodeAsync(0, bootstrap: true, ct);
            await cluster.RootSqlAsync(0,
                $"CREATE USER '{UserName}'@'127.%' IDENTIFIED BY '{cluster._password}'; GRANT ALL ON *.* TO '{UserName}'@'127.%';", ct);
            for (var i = 1; i < size; i++)
            {
                await cluster.StartNodeAsync(i, bootstrap: false, ct);
            }
            return cluster;
        }
        catch
        {
            await cluster.DisposeAsync();
            throw;
        }
    }

    /// <summary>
    /// Every node, in order, with MySqlConnector's fail-over: connections go to the first node
    /// that answers, as the README recommends for AMS on Galera.
    /// </summary>
    public string ConnectionString(string database) =>
        $"Server={string.Join(',', _nodes.Select(n => n.Address))};Port={Port};LoadBalance=FailOver;" +
        $"User ID={UserName};Password={_password};Database={database};";

    /// <summary>One node only: several AMS nodes each on its own Galera node write concurrently.</summary>
    public string ConnectionString(string database, int node) =>
        $"Server={_nodes[node].Address};Port={Port};User ID={UserName};Password={_password};Database={database};";

    public Task CreateDatabaseAsync(string name, CancellationToken ct = default) =>
        RootSqlAsync(FirstRunning(),
            $"CREATE DATABASE IF NOT EXISTS `{MariaDbServer.CheckIdentifier(name)}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;", ct);

    /// <summary>Runs SQL as root on one node through the <c>mariadb</c> CLI; returns its tab-separated output.</summary>
    public Task<string> RootSqlAsync(int node, string sql, CancellationToken ct = default) =>
        MariaDbServer.RootSqlAsync(_nodes[node].Socket, sql, ct);

    /// <summary>SIGKILL, as a crashed machine: no clean leave, the others notice by timeout.</summary>
    public async Task KillAsync(int node)
    {
        var process = Running(node);
        process.Kill();
        await process.WaitForExitAsync();
        process.Dispose();
        _nodes[node].Process = null;
    }

    /// <summary>
    /// SIGSTOP, as a hung or swapped-out machine: its connections stay open and nothing answers.
    /// The others stall their commits until they evict it (<c>evs.suspect_timeout</c>, 3 s here).
    /// </summary>
    public void Pause(int node) => Running(node).Pause();

    /// <summary>SIGCONT after <see cref="Pause"/>: an evicted node rejoins by itself (IST); see <see cref="WaitUntilSyncedAsync"/>.</summary>
    public void Resume(int node) => Running(node).Resume();

    private ServerProcess Running(int node) => _nodes[node].Process ?? throw new InvalidOperationException($"Node {node + 1} is not running.");

    /// <summary>Starts a stopped node again; it rejoins and catches up (IST, or a full transfer).</summary>
    public Task RejoinAsync(int node, CancellationToken ct = default) => StartNodeAsync(node, bootstrap: false, ct);

    /// <summary>The end of a node's server log (WSREP notes, warnings, errors), for a failed test's output.</summary>
    public string LogTail(int node, int lines = 300) => _nodes[node].Process?.LogTail(lines) ?? "(not started)";

    public async Task<int> ClusterSizeAsync(int node) =>
        int.Parse((await RootSqlAsync(node, "SHOW STATUS LIKE 'wsrep_cluster_size'")).Split('\n', '\t')[3]);

    private int FirstRunning() =>
        _nodes.FirstOrDefault(n => n.Process is { HasExited: false })?.Index ?? throw new InvalidOperationException("No node is running.");

    private async Task StartNodeAsync(int i, bool bootstrap, CancellationToken ct)
    {
        var node = _nodes[i];
        // A second server on its ports and data would fail, and the first one's wrapper, dropped,
        // would stop it and delete the cluster's directory.
        if (node.Process is { HasExited: false }) throw new InvalidOperationException($"Galera node {i + 1} is running: kill it first.");
        // A joiner's state-transfer ports were free when picked, seconds before; an outgoing
        // connection of another process may hold one by now, and the rsync daemon then cannot
        // listen and the node aborts ("Failed to prepare for 'rsync' SST", seen once in CI): such
        // a start is tried again on new ports.
        for (var attempt = 1; ; attempt++)
        {
            node.Process?.Dispose();
            List<string> arguments =
            [
                "--no-defaults",
                $"--user={(Environment.UserName == "root" ? "mysql" : Environment.UserName)}",
                $"--datadir={Path.Combine(node.Dir, "data")}",
                $"--tmpdir={Path.Combine(node.Dir, "tmp")}",
                $"--socket={node.Socket}",
                $"--port={Port}",
                $"--bind-address={node.Address}",
                .. MariaDbServer.SmallServerArguments,
                // What Galera needs (README, "MariaDB Galera Cluster").
                "--binlog-format=ROW",
                "--innodb-autoinc-lock-mode=2",
                "--wsrep-sync-wait=1",
                "--wsrep-on=ON",
                "--wsrep-provider=/usr/lib/galera/libgalera_smm.so",
                "--wsrep-cluster-name=ams",
                $"--wsrep-cluster-address=gcomm://{string.Join(',', _nodes.Select(n => $"{n.Address}:{n.GcommPort}"))}",
                $"--wsrep-node-address={node.Address}:{node.GcommPort}",
                $"--wsrep-node-name=n{i + 1}",
                $"--wsrep-provider-options=gmcast.listen_addr=tcp://{node.Address}:{node.GcommPort};ist.recv_addr={node.Address}:{node.IstPort};gcache.size=64M;evs.suspect_timeout=PT3S;evs.inactive_timeout=PT6S",
                $"--wsrep-sst-receive-address={node.Address}:{node.SstPort}",
                "--wsrep-sst-method=rsync",
            ];
            if (bootstrap) arguments.Add("--wsrep-new-cluster");
            node.Process = await ServerProcess.StartAsync("mariadbd", arguments, Path.Combine(node.Dir, "mariadbd.log"), _baseDir, ct);
            try
            {
                await WaitUntilSyncedAsync(i, ct);
                return;
            }
            catch (InvalidOperationException) when (attempt < 3 && node.Process is { HasExited: true } exited
                && exited.LogTail().Contains("Failed to prepare for 'rsync' SST", StringComparison.Ordinal))
            {
                (node.SstPort, node.IstPort) = (FreePort.Next(), FreePort.Next());
            }
        }
    }

    /// <summary>Waits until the node is a synced member of the cluster of every running node (after a start, or a <see cref="Resume"/>).</summary>
    public async Task WaitUntilSyncedAsync(int i, CancellationToken ct = default)
    {
        var node = _nodes[i];
        var started = Stopwatch.StartNew();
        while (true)
        {
            if (node.Process is not { } process || process.HasExited)
                throw new InvalidOperationException($"Galera node {i + 1} exited before it was synced. Log tail:\n{node.Process?.LogTail()}");
            if (started.Elapsed > JoinTimeout)
                throw new TimeoutException($"Galera node {i + 1} was not synced within {JoinTimeout.TotalSeconds} s. Log tail:\n{process.LogTail()}");
            if (await MariaDbServer.SocketAcceptsAsync(node.Socket, ct))
            {
                try
                {
                    // Asked of another node too: a node resumed after a pause still reports its old
                    // state (Synced, in a cluster of all) until it notices that it was evicted.
                    var running = _nodes.Where(n => n.Process is { HasExited: false }).ToList();
                    var other = running.FirstOrDefault(n => n.Index != i);
                    if ((await RootSqlAsync(i, "SHOW STATUS LIKE 'wsrep_local_state_comment'", ct)).Contains("Synced", StringComparison.Ordinal)
                        && (other is null || await ClusterSizeAsync(other.Index) == running.Count))
                        return;
                }
                catch (InvalidOperationException)
                {
                    // Still starting: the socket accepts before the server answers queries.
                }
            }
            await Task.Delay(100, ct);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        await Task.WhenAll(_nodes.Where(n => n.Process is not null).Select(async n =>
        {
            await n.Process!.StopAsync(StopGrace);
            n.Process.Dispose();
        }));
        MariaDbServer.DeleteDirectory(_baseDir);
    }
}
