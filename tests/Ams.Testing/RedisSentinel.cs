namespace Ams.Testing;

/// <summary>
/// Redis with Sentinel on loopback: a master, one replica and three sentinels watching them as
/// service <c>ams</c> (quorum 2, down after 1 s), all non-persistent. The app connects through the
/// sentinels (<see cref="ConnectionString"/>); killing the master makes them promote the replica.
/// </summary>
public sealed class RedisSentinel : IAsyncDisposable
{
    public const string Service = "ams";
    static readonly TimeSpan ReadyTimeout = TimeSpan.FromSeconds(30);

    readonly string dir = Directory.CreateTempSubdirectory("ams-redis-sentinel-").FullName;
    readonly List<(int Port, ServerProcess Process)> servers = [];
    readonly List<(int Port, ServerProcess Process)> sentinels = [];

    /// <summary>StackExchange.Redis configuration string: the sentinels and the service name.</summary>
    public string ConnectionString => string.Join(',', sentinels.Select(s => $"127.0.0.1:{s.Port}")) + $",serviceName={Service}";

    public static async Task<RedisSentinel> StartAsync()
    {
        var redis = new RedisSentinel();
        try
        {
            var master = await redis.StartServerAsync("master", []);
            var replica = await redis.StartServerAsync("replica", ["--replicaof", "127.0.0.1", master.ToString()]);
            // Until its first full copy is done a replica holds nothing, and a failover would lose it all.
            await redis.WaitUntilAsync(async () => (await RedisCluster.CliAsync(replica, "INFO", "replication")).Contains("master_link_status:up"), "the replica never finished its first sync");
            for (var i = 0; i < 3; i++)
            {
                var port = FreePort.Next();
                var config = Path.Combine(redis.dir, $"sentinel-{i}.conf");
                await File.WriteAllTextAsync(config, $"""
                    port {port}
                    bind 127.0.0.1
                    dir {redis.dir}
                    sentinel monitor {Service} 127.0.0.1 {master} 2
                    sentinel down-after-milliseconds {Service} 1000
                    sentinel failover-timeout {Service} 5000
                    """);
                var process = await ServerProcess.StartAsync("redis-server", [config, "--sentinel"], Path.Combine(redis.dir, $"sentinel-{i}.log"), redis.dir, CancellationToken.None);
                redis.sentinels.Add((port, process));
            }
            // Every sentinel knows the replica and the others before anything is asked of them.
            foreach (var (port, _) in redis.sentinels)
                await redis.WaitUntilAsync(async () =>
                {
                    var master = await RedisCluster.CliAsync(port, "SENTINEL", "MASTER", Service);
                    return Field(master, "num-slaves") == "1" && Field(master, "num-other-sentinels") == "2";
                }, $"sentinel {port} never saw the replica and the other sentinels");
            return redis;
        }
        catch
        {
            await redis.DisposeAsync();
            throw;
        }
    }

    /// <summary>The port of the master the sentinels name now.</summary>
    public async Task<int> MasterPortAsync() =>
        int.Parse((await RedisCluster.CliAsync(sentinels[0].Port, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", Service)).Split('\n', StringSplitOptions.RemoveEmptyEntries)[1].Trim());

    /// <summary>Kills the master (SIGKILL) and waits until the sentinels have promoted the replica and it takes writes.</summary>
    public async Task KillMasterAsync()
    {
        var old = await MasterPortAsync();
        var master = servers.Single(s => s.Port == old).Process;
        master.Kill();
        await master.WaitForExitAsync();
        await WaitUntilAsync(async () => await MasterPortAsync() != old, "the sentinels never promoted the replica");
        var promoted = await MasterPortAsync();
        await WaitUntilAsync(async () => (await RedisCluster.CliAsync(promoted, "INFO", "replication")).Contains("role:master"), "the promoted replica never became a master");
    }

    async Task<int> StartServerAsync(string name, string[] arguments)
    {
        var port = FreePort.Next();
        var process = await ServerProcess.StartAsync("redis-server",
            ["--port", port.ToString(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--repl-diskless-sync-delay", "0", "--dir", dir, .. arguments],
            Path.Combine(dir, $"{name}.log"), dir, CancellationToken.None);
        servers.Add((port, process));
        await WaitUntilAsync(async () => (await RedisCluster.CliAsync(port, "PING")).Trim() == "PONG", $"redis-server ({name}) on {port} did not start");
        return port;
    }

    async Task WaitUntilAsync(Func<Task<bool>> condition, string failure)
    {
        var deadline = DateTime.UtcNow + ReadyTimeout;
        while (true)
        {
            try
            {
                if (await condition()) return;
            }
            catch (Exception e) when (e is InvalidOperationException or FormatException or IndexOutOfRangeException)
            {
                // Not answering yet, or mid-failover: ask again.
            }
            if (DateTime.UtcNow > deadline) throw new TimeoutException(failure);
            await Task.Delay(100);
        }
    }

    // SENTINEL MASTER answers field and value on alternate lines.
    static string? Field(string reply, string name)
    {
        var lines = reply.Split('\n', StringSplitOptions.TrimEntries);
        var at = Array.IndexOf(lines, name);
        return at >= 0 && at + 1 < lines.Length ? lines[at + 1] : null;
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var (_, process) in sentinels.Concat(servers))
        {
            if (!process.HasExited) await process.StopAsync(TimeSpan.FromSeconds(5));
            process.Dispose();
        }
        if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
    }
}
