namespace Ams.Testing;

/// <summary>
/// A Redis Cluster on loopback: three masters and three replicas (redis-server with
/// <c>--cluster-enabled yes</c>, joined by <c>redis-cli --cluster create</c>), non-persistent apart
/// from each node's <c>nodes.conf</c>, so a killed node started again rejoins as a replica.
/// Failure detection is fast (<c>cluster-node-timeout</c> 1 s) and the cluster keeps serving the
/// slots it still covers while one master is being replaced.
/// </summary>
public sealed class RedisCluster : IAsyncDisposable
{
    static readonly TimeSpan ReadyTimeout = TimeSpan.FromSeconds(30);

    readonly Node[] nodes;
    readonly int masters;

    RedisCluster(Node[] nodes, int masters) => (this.nodes, this.masters) = (nodes, masters);

    /// <summary>StackExchange.Redis configuration string naming every node (any one would do; all make start-up robust).</summary>
    public string ConnectionString => string.Join(',', nodes.Select(n => $"127.0.0.1:{n.Port}"));

    public IReadOnlyList<int> Ports => nodes.Select(n => n.Port).ToList();

    public static async Task<RedisCluster> StartAsync(int masters = 3, int replicasPerMaster = 1)
    {
        var nodes = Enumerable.Range(0, masters * (1 + replicasPerMaster)).Select(_ => new Node()).ToArray();
        var cluster = new RedisCluster(nodes, masters);
        try
        {
            await Task.WhenAll(nodes.Select(n => n.StartAsync()));
            await ProcessRunner.RunAsync("redis-cli",
                ["--cluster", "create", .. nodes.Select(n => $"127.0.0.1:{n.Port}"), "--cluster-replicas", replicasPerMaster.ToString(), "--cluster-yes"]);
            await cluster.WaitUntilHealthyAsync(nodes.Length);
            await cluster.WaitUntilReplicasSyncedAsync();
            return cluster;
        }
        catch
        {
            await cluster.DisposeAsync();
            throw;
        }
    }

    /// <summary>Runs one redis-cli command against the node on <paramref name="port"/>.</summary>
    public static Task<string> CliAsync(int port, params string[] command) =>
        ProcessRunner.RunAsync("redis-cli", ["-p", port.ToString(), .. command]);

    /// <summary>The port of the master that serves <paramref name="key"/> (or channel) right now; 0 while none does (mid-failover).</summary>
    public async Task<int> MasterOfAsync(string key)
    {
        var slot = int.Parse((await CliAsync(RunningPort(), "CLUSTER", "KEYSLOT", key)).Trim());
        foreach (var line in (await CliAsync(RunningPort(), "CLUSTER", "NODES")).Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            // <id> <ip:port@bus> <flags> <master> <ping> <pong> <epoch> <state> <slots...>
            var fields = line.Split(' ');
            if (!fields[2].Contains("master") || fields[2].Contains("fail")) continue;
            foreach (var range in fields[8..])
            {
                if (range.StartsWith('[')) continue;
                var bounds = range.Split('-');
                var (low, high) = (int.Parse(bounds[0]), int.Parse(bounds[^1]));
                if (slot >= low && slot <= high) return int.Parse(fields[1].Split('@')[0].Split(':')[1]);
            }
        }
        return 0;
    }

    /// <summary>Every replica with the port of its master, as the cluster sees them now.</summary>
    public async Task<List<(int Replica, int Master)>> ReplicasAsync()
    {
        // <id> <ip:port@bus> <flags> <master id> …
        var nodesText = (await CliAsync(RunningPort(), "CLUSTER", "NODES")).Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split(' ')).ToList();
        static int PortOf(string[] fields) => int.Parse(fields[1].Split('@')[0].Split(':')[1]);
        var byId = nodesText.ToDictionary(f => f[0], PortOf);
        return nodesText.Where(f => f[2].Contains("slave")).Select(f => (PortOf(f), byId[f[3]])).ToList();
    }

    /// <summary>
    /// Cuts every replica off its master: the replica is paused and the master closes the
    /// replication link, so what the masters are written from now on reaches no replica (a paused
    /// replica with its link open would still find it in its socket buffer when resumed).
    /// Returns the replicas' ports, for <see cref="Resume"/>. With <paramref name="ofMaster"/>, only
    /// that master's replicas: one shard as just after a failover, the others as they were.
    /// </summary>
    public async Task<List<int>> CutOffReplicasAsync(int? ofMaster = null)
    {
        var pairs = (await ReplicasAsync()).Where(pair => ofMaster is null || pair.Master == ofMaster).ToList();
        foreach (var (replica, master) in pairs)
        {
            Pause(replica);
            await CliAsync(master, "CLIENT", "KILL", "TYPE", "replica");
        }
        return pairs.Select(p => p.Replica).ToList();
    }

    /// <summary>Kills the node on <paramref name="port"/> (SIGKILL): no goodbye to the cluster, its replica takes over after the node timeout.</summary>
    public async Task KillAsync(int port)
    {
        var node = nodes.Single(n => n.Port == port);
        node.Process!.Kill();
        await node.Process.WaitForExitAsync();
    }

    /// <summary>Freezes the node on <paramref name="port"/> (SIGSTOP): its connections stay open and nothing answers, and the cluster replaces it as if dead.</summary>
    public void Pause(int port)
    {
        var node = nodes.Single(n => n.Port == port);
        node.Process!.Pause();
        node.Paused = true;
    }

    /// <summary>Lets a paused node go on; it learns it was replaced and becomes a replica.</summary>
    public void Resume(int port)
    {
        var node = nodes.Single(n => n.Port == port);
        node.Process!.Resume();
        node.Paused = false;
    }

    /// <summary>Starts a killed node again; it rejoins from its nodes.conf (as a replica, once its slots moved on) and has its copy.</summary>
    public async Task StartAgainAsync(int port)
    {
        var node = nodes.Single(n => n.Port == port);
        // Starting it again drops the running server's wrapper, which stops it and deletes its directory.
        if (node.Process is { HasExited: false }) throw new InvalidOperationException($"Redis node {port} is running: kill it first.");
        await node.StartAsync();
        await WaitUntilHealthyAsync(nodes.Length);
        await WaitUntilReplicasSyncedAsync();
    }

    /// <summary>Waits until every slot is served again and the cluster counts <paramref name="known"/> healthy nodes.</summary>
    public async Task WaitUntilHealthyAsync(int known)
    {
        var deadline = DateTime.UtcNow + ReadyTimeout;
        var info = "";
        while (DateTime.UtcNow < deadline)
        {
            try
            {
                info = await CliAsync(RunningPort(), "CLUSTER", "INFO");
                var nodesText = await CliAsync(RunningPort(), "CLUSTER", "NODES");
                var healthy = nodesText.Split('\n', StringSplitOptions.RemoveEmptyEntries).Count(l => !l.Split(' ')[2].Contains("fail") && l.Contains(" connected"));
                if (info.Contains("cluster_state:ok") && info.Contains("cluster_slots_ok:16384") && healthy == known) return;
            }
            catch (InvalidOperationException)
            {
                // A node still starting: ask again.
            }
            await Task.Delay(100);
        }
        throw new TimeoutException($"The Redis Cluster did not become healthy with {known} nodes:\n{info}");
    }

    /// <summary>
    /// Waits until every replica's link to its master is up: until a replica's first full copy is
    /// done, a failover would lose what its master held. A node started again may still call
    /// itself a master for a moment before it learns its slots moved on, so this counts replicas.
    /// </summary>
    public async Task WaitUntilReplicasSyncedAsync()
    {
        var deadline = DateTime.UtcNow + ReadyTimeout;
        var replicas = nodes.Length - masters;
        while (true)
        {
            var infos = await Task.WhenAll(nodes.Select(n => CliAsync(n.Port, "INFO", "replication")));
            if (infos.Count(i => i.Contains("role:slave") && i.Contains("master_link_status:up")) == replicas) return;
            if (DateTime.UtcNow > deadline) throw new TimeoutException("The replicas never all finished their sync:\n" + string.Join("\n", infos));
            await Task.Delay(50);
        }
    }

    /// <summary>Waits until every replica of the master on <paramref name="master"/> holds what that master was written so far.</summary>
    public async Task WaitUntilReplicatedAsync(int master)
    {
        static long Offset(string info, string field) =>
            long.Parse(info.Split('\n').First(l => l.StartsWith(field + ":", StringComparison.Ordinal))[(field.Length + 1)..].Trim());
        var written = Offset(await CliAsync(master, "INFO", "replication"), "master_repl_offset");
        var replicas = (await ReplicasAsync()).Where(p => p.Master == master).Select(p => p.Replica).ToList();
        var deadline = DateTime.UtcNow + ReadyTimeout;
        while (true)
        {
            var infos = await Task.WhenAll(replicas.Select(r => CliAsync(r, "INFO", "replication")));
            if (replicas.Count > 0 && infos.All(i => Offset(i, "slave_repl_offset") >= written)) return;
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"The replicas of {master} never caught up with offset {written}:\n" + string.Join("\n", infos));
            await Task.Delay(20);
        }
    }

    int RunningPort() => nodes.First(n => n.Process is { HasExited: false } && !n.Paused).Port;

    public async ValueTask DisposeAsync()
    {
        foreach (var node in nodes) await node.DisposeAsync();
    }

    sealed class Node : IAsyncDisposable
    {
        public readonly string Dir = Directory.CreateTempSubdirectory("ams-redis-cluster-").FullName;
        public int Port { get; private set; } = FreePort.Next();
        int busPort = FreePort.Next();
        public ServerProcess? Process;
        public bool Paused;

        /// <summary>Starts the node; the first start moves to other ports while somebody else holds the picked ones.</summary>
        public async Task StartAsync()
        {
            var firstStart = Process is null;
            for (var attempt = 1; ; attempt++)
            {
                Process?.Dispose();
                Process = await ServerProcess.StartAsync("redis-server",
                [
                    "--port", Port.ToString(), "--bind", "127.0.0.1",
                    "--cluster-enabled", "yes", "--cluster-port", busPort.ToString(),
                    "--cluster-config-file", Path.Combine(Dir, "nodes.conf"),
                    "--cluster-node-timeout", "1000", "--cluster-require-full-coverage", "no",
                    "--cluster-replica-validity-factor", "0", "--repl-diskless-sync-delay", "0",   // a replica takes over however long its link was quiet (a hung master keeps it open)
                    "--save", "", "--appendonly", "no", "--dir", Dir,
                ], Path.Combine(Dir, "redis.log"), Dir, CancellationToken.None);
                if (await AnswersAsync()) return;
                var log = Process.LogTail();
                await Process.StopAsync(TimeSpan.FromSeconds(5));
                if (!firstStart || attempt == 5 || !log.Contains("Address already in use"))
                    throw new InvalidOperationException($"redis-server (cluster node) on {Port} did not start:\n{log}");
                (Port, busPort) = (FreePort.Next(), FreePort.Next());
            }
        }

        // Answers as itself: INFO names our pid, not that of a server somebody else started on the port.
        async Task<bool> AnswersAsync()
        {
            var deadline = DateTime.UtcNow + ReadyTimeout;
            while (DateTime.UtcNow < deadline && !Process!.HasExited)
            {
                try
                {
                    if ((await CliAsync(Port, "INFO", "server")).Split('\n').Any(line => line.Trim() == $"process_id:{Process.Id}")) return true;
                }
                catch (InvalidOperationException)
                {
                    // Not listening yet.
                }
                await Task.Delay(20);
            }
            return false;
        }

        public async ValueTask DisposeAsync()
        {
            if (Process is not null) await Process.StopAsync(TimeSpan.FromSeconds(5));
            Process?.Dispose();
            if (Directory.Exists(Dir)) Directory.Delete(Dir, recursive: true);
        }
    }
}
