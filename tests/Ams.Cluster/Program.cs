using System.Runtime.InteropServices;
using Ams.Testing;

// `just cluster`: three Galera nodes, a Redis Cluster of six, three AMS nodes (the AOT binary) and
// HAProxy, all on loopback, until Ctrl-C. Nothing is kept: every run starts empty.
Console.WriteLine("Starting three Galera nodes, six Redis Cluster nodes, three AMS nodes and HAProxy…");
await using var cluster = await LoopbackCluster.StartAsync();
var stopped = new TaskCompletionSource();
using var interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, context => { context.Cancel = true; stopped.TrySetResult(); });
using var terminate = PosixSignalRegistration.Create(PosixSignal.SIGTERM, context => { context.Cancel = true; stopped.TrySetResult(); });

Console.WriteLine($"""

    AMS through HAProxy:  {cluster.Proxy.BaseAddress}   (TLS with a self-signed certificate: curl -k, or accept it in the browser)
    AMS nodes:            {string.Join("  ", cluster.Nodes.Select(n => n.BaseAddress))}
    Galera (MariaDB):     {cluster.Galera.ConnectionString(cluster.Database)}
    Redis Cluster:        {cluster.Redis.ConnectionString}

    Try a failover: redis-cli -p <port> SHUTDOWN NOSAVE on a master (redis-cli -p <port> CLUSTER NODES lists them).
    Ctrl-C stops everything.
    """);
await stopped.Task;
Console.WriteLine("Stopping…");
