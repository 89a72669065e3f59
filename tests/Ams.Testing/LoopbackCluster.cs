using System.Security.Cryptography;

namespace Ams.Testing;

/// <summary>
/// The clustered form on loopback: a three-node Galera cluster (127.0.0.1–3), a Redis Cluster of
/// three masters and three replicas, three AMS nodes on the AOT binary (all writing through Galera
/// node 1, with nodes 2 and 3 next on their fail-over list) and the HAProxy sample in front of them. <c>just cluster</c> and the drill of
/// <c>just cluster-test</c> both start it.
/// </summary>
public sealed class LoopbackCluster : IAsyncDisposable
{
    public GaleraCluster Galera { get; private set; } = null!;
    public RedisCluster Redis { get; private set; } = null!;
    public AppProcess[] Nodes { get; private set; } = [];
    public ReverseProxy Proxy { get; private set; } = null!;
    public string Database { get; } = "ams";

    public static async Task<LoopbackCluster> StartAsync(IReadOnlyDictionary<string, string>? environment = null)
    {
        var cluster = new LoopbackCluster();
        try
        {
            var redis = RedisCluster.StartAsync();
            cluster.Galera = await GaleraCluster.StartAsync(3);
            cluster.Redis = await redis;
            await cluster.Galera.CreateDatabaseAsync(cluster.Database);
            var masterKeys = "cluster:" + Convert.ToBase64String(RandomNumberGenerator.GetBytes(32));
            var binary = Path.Combine(AppProcess.RepositoryRoot(), "artifacts", "publish", "Ams");
            var settings = new Dictionary<string, string>(environment ?? new Dictionary<string, string>()) { ["Network__TrustedProxies"] = "127.0.0.1/32", ["Redis__Replicas"] = "1" };
            // The README's form behind a load balancer: every AMS node writes through Galera node 1
            // and fails over in the same order, so sends racing into a shared conversation from
            // several nodes wait for its lock rather than lose certification races (docs/scaling.md).
            // The multi-writer form has tests of its own (GaleraTests).
            cluster.Nodes = await Task.WhenAll(Enumerable.Range(0, 3).Select(_ =>
                AppProcess.LaunchAsync(binary, [], cluster.Galera.ConnectionString(cluster.Database), cluster.Redis.ConnectionString, masterKeys, settings)));
            var sample = File.ReadAllText(Path.Combine(AppProcess.RepositoryRoot(), "docs", "proxy", "haproxy.cfg"));
            cluster.Proxy = await ReverseProxy.StartHaproxyAsync(sample, cluster.Nodes.Select(n => n.BaseAddress.Port).ToList());
            return cluster;
        }
        catch
        {
            await cluster.DisposeAsync();
            throw;
        }
    }

    /// <summary>One column of one row, as root on Galera node 2 (the drill kills node 1).</summary>
    public async Task<long> ScalarAsync(string sql) =>
        long.Parse((await Galera.RootSqlAsync(1, sql)).Split('\n')[1].Trim());

    public async ValueTask DisposeAsync()
    {
        if (Proxy is not null) await Proxy.DisposeAsync();
        // Together: each waits out its own drain (about a second), and none needs another gone first.
        await Task.WhenAll(Nodes.Select(node => node.DisposeAsync()));
        if (Redis is not null) await Redis.DisposeAsync();
        if (Galera is not null) await Galera.DisposeAsync();
    }
}
