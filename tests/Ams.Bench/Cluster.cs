using Ams.Testing;

namespace Ams.Bench;

/// <summary>
/// `just bench --cluster`: the floor, send and delivery scenarios again on the loopback cluster of
/// `just cluster` (three AMS nodes behind the HAProxy sample with TLS, a three-node Galera cluster,
/// a Redis Cluster of three masters and three replicas), reported as rows of their own next to the
/// single-node ones. Every one of those thirteen processes shares this machine's cores with the
/// load, so the rows show what the clustered form costs here, not what it gains on real machines
/// (docs/scaling.md).
/// </summary>
static class ClusterScenarios
{
    public static async Task<List<Result>> RunAsync(IReadOnlyDictionary<string, string> environment, Settings settings, Func<string, bool> runs)
    {
        Console.WriteLine("cluster: starting three Galera nodes, six Redis Cluster nodes, three AMS nodes and HAProxy");
        await using var cluster = await LoopbackCluster.StartAsync(environment);
        var proxy = cluster.Proxy.BaseAddress;
        await cluster.Galera.CreateDatabaseAsync("bench");
        const string Where = "on the loopback cluster (3 Galera nodes, Redis Cluster 3+3, 3 AMS nodes behind HAProxy with TLS)";
        var cpu = new CpuMeter();
        var results = new List<Result>();
        if (runs("floor"))
        {
            // Galera node 1 (flush once a second, as Galera deployments commonly run: a commit is
            // on every node before it is acknowledged) and the Redis Cluster.
            var floor = await Scenarios.FloorAsync(cluster.Galera.ConnectionString("bench"), cluster.Redis.ConnectionString, settings, cpu);
            results.Add(floor with { Name = "Cluster: floor", What = $"{floor.What}, {Where}" });
        }
        if (runs("send"))
        {
            var send = await Scenarios.SendThroughputAsync(proxy, settings, cpu);
            results.Add(send with { Name = "Cluster: send throughput", What = $"POST /api/messages through HAProxy, {settings.Concurrency} concurrent senders, {Where}" });
        }
        if (runs("delivery"))
        {
            // Below the cluster's send ceiling here (about 1,300/s in the send row): at 1,000/s a run
            // measures its queues, not its delivery.
            var galera = Enumerable.Range(0, cluster.Galera.Size).Select(node => cluster.Galera.ConnectionString(cluster.Database, node)).ToArray();
            var delivery = await Scenarios.DeliveryAsync(proxy, proxy, galera, settings, Math.Min(500, settings.DeliveryRates.Max()));
            results.Add(delivery with { Name = "Cluster: delivery", What = $"send and SSE both through HAProxy (any node to any node), {delivery.What[(delivery.What.IndexOf(',') + 2)..]}, {Where}" });
        }
        return results;
    }
}
