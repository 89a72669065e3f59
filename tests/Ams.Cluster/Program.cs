using System.Runtime.InteropServices;
using Ams.Testing;

// `just cluster`: three Galera nodes, a Redis Cluster of six, three AMS nodes (the AOT binary) and
// HAProxy, all on loopback, until Ctrl-C. Nothing is kept: every run starts empty.
// The signal handlers are registered first so that they are disposed last: a second Ctrl-C or TERM
// (npm's `just` sends one after the terminal's SIGINT) while the cluster stops is ignored, not the
// end of the process halfway through stopping it.
var stopped = new TaskCompletionSource();
using var interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, context => { context.Cancel = true; stopped.TrySetResult(); });
using var terminate = PosixSignalRegistration.Create(PosixSignal.SIGTERM, context => { context.Cancel = true; stopped.TrySetResult(); });
Console.WriteLine("Starting three Galera nodes, six Redis Cluster nodes, three AMS nodes and HAProxy…");
await using var cluster = await LoopbackCluster.StartAsync();

const string Commands = """
    kill ams N | start ams N        an AMS node (1-3), SIGKILL / started again on its port
    kill galera N | start galera N  a Galera node (1-3), SIGKILL / rejoined (it catches up by IST or SST)
    kill redis PORT | start redis PORT   a Redis Cluster node; a killed master's replica takes over in ~1 s
    pause ams|galera N, pause redis PORT     SIGSTOP, as a hung machine (its connections stay open)
    resume ams|galera N, resume redis PORT   SIGCONT (a paused Galera node rejoins; a replaced Redis master returns as a replica)
    log ams N [LINES]               the last 40 (or LINES) lines an AMS node wrote
    """;
Console.WriteLine($"""

    AMS through HAProxy:  {cluster.Proxy.BaseAddress}   (TLS with a self-signed certificate: curl -k, or accept it in the browser)
    AMS nodes:            {string.Join("  ", cluster.Nodes.Select(n => n.BaseAddress))}
    Galera (MariaDB):     {cluster.Galera.ConnectionString(cluster.Database)}
    Redis Cluster:        {cluster.Redis.ConnectionString}   (redis-cli -p <port> CLUSTER NODES lists the masters)

    Try a failover by typing a command here (what a node needs to start again is kept for you):
    {Commands}
    Ctrl-C stops everything, including what was started again here.
    """);

_ = Task.Run(async () =>
{
    // Without a terminal (started in the background) stdin ends at once: only the signals stop it then.
    while (Console.In.ReadLine() is { } line)
    {
        try
        {
            Console.WriteLine(await RunAsync(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)));
        }
        catch (Exception e)
        {
            Console.WriteLine($"failed: {e.Message}");
        }
    }
});
await stopped.Task;
Console.WriteLine("Stopping…");

async Task<string> RunAsync(string[] words)
{
    switch (words)
    {
        case [] or ["help"]:
            return Commands;
        case ["kill", "ams", var n] when Node(n) is { } i:
            await cluster.Nodes[i].KillAsync();
            return $"AMS node {i + 1} killed; HAProxy sends its requests to the others";
        case ["start", "ams", var n] when Node(n) is { } i:
            await cluster.Nodes[i].StartAgainAsync();
            return $"AMS node {i + 1} serves again on {cluster.Nodes[i].BaseAddress}";
        case ["log", "ams", var n, .. var rest] when Node(n) is { } i && rest is [] or [_]:
            return string.Join('\n', cluster.Nodes[i].Log.Split('\n').TakeLast(rest is [var lines] && int.TryParse(lines, out var count) ? count : 40));
        case ["pause", "ams", var n] when Node(n) is { } i:
            await cluster.Nodes[i].PauseAsync();
            return $"AMS node {i + 1} paused; HAProxy passes it over within ~2 s, and what was on the wire to it waits (up to 15 s)";
        case ["resume", "ams", var n] when Node(n) is { } i:
            await cluster.Nodes[i].ResumeAsync();
            return $"AMS node {i + 1} resumed";
        case ["pause", "galera", var n] when Node(n) is { } i:
            cluster.Galera.Pause(i);
            return $"Galera node {i + 1} paused; the others hold their commits until they evict it (3 s here)";
        case ["resume", "galera", var n] when Node(n) is { } i:
            cluster.Galera.Resume(i);
            await cluster.Galera.WaitUntilSyncedAsync(i);
            return $"Galera node {i + 1} resumed, rejoined and is synced";
        case ["pause", "redis", var p] when int.TryParse(p, out var port) && cluster.Redis.Ports.Contains(port):
            cluster.Redis.Pause(port);
            return $"Redis node {port} paused; a paused master's replica takes over in ~1-3 s";
        case ["resume", "redis", var p] when int.TryParse(p, out var port) && cluster.Redis.Ports.Contains(port):
            cluster.Redis.Resume(port);
            return $"Redis node {port} resumed";
        case ["kill", "galera", var n] when Node(n) is { } i:
            await cluster.Galera.KillAsync(i);
            return $"Galera node {i + 1} killed; the others go on as the primary component";
        case ["start", "galera", var n] when Node(n) is { } i:
            await cluster.Galera.RejoinAsync(i);
            return $"Galera node {i + 1} rejoined and is synced";
        case ["kill", "redis", var p] when int.TryParse(p, out var port) && cluster.Redis.Ports.Contains(port):
            await cluster.Redis.KillAsync(port);
            return $"Redis node {port} killed";
        case ["start", "redis", var p] when int.TryParse(p, out var port) && cluster.Redis.Ports.Contains(port):
            await cluster.Redis.StartAgainAsync(port);
            return $"Redis node {port} rejoined (as a replica, if its slots moved on) and is synced";
        case ["kill" or "start" or "pause" or "resume", "ams" or "galera", _] or ["log", "ams", _, ..]:
            return $"no {(words[1] == "ams" ? "AMS" : "Galera")} node '{words[2]}': they are 1, 2 and 3";
        case ["kill" or "start" or "pause" or "resume", "redis", _]:
            return $"no Redis node on port '{words[2]}': they are {string.Join(", ", cluster.Redis.Ports)}";
        default:
            return $"unknown command; one of:\n{Commands}";
    }
}

static int? Node(string n) => int.TryParse(n, out var i) && i is >= 1 and <= 3 ? i - 1 : null;
