using System.Diagnostics;
using Ams.Bench;
using Ams.Testing;

// `just bench` runs the full set and rewrites docs/benchmarks.md; `--smoke` runs a few seconds of
// each scenario (part of `just test`, so the harness cannot rot) and writes to artifacts/.
var smoke = args.Contains("--smoke");
// `--cluster` adds the floor, send and delivery scenarios on the loopback cluster (`just cluster`).
// `--only send` (or a list of footprint, floor, send, delivery, connections, catchup, attachments, floordelivery, httpfloordelivery, connections50k, streams50k, prosody) runs just those
// and writes to artifacts/, for profiling a node under that load; the node PIDs are printed. Delivery
// runs at each of the settings' rates: `delivery` is all of them, `delivery-1000` one (likewise
// `floordelivery`, `httpfloordelivery`, `prosody` and `prosody-200`, …, `prosody-throughput`).
var only = args.SkipWhile(a => a != "--only").Skip(1).FirstOrDefault()?.Split(',');
bool Runs(string scenario) => only is null || only.Contains(scenario) || only.Contains(scenario.Split('-')[0]);
var root = AppProcess.RepositoryRoot();
var aot = Path.Combine(root, "artifacts", "publish", "Ams");
var jit = Path.Combine(root, "src", "Ams", "bin", "Release", "net10.0", "Ams.dll");
foreach (var path in new[] { aot, jit })
    if (!File.Exists(path)) throw new FileNotFoundException($"{path} is missing: run `just build` and `just publish` first.");

var settings = smoke ? Settings.Smoke : Settings.Full;
var report = new Report(smoke);
// The node and this process each hold one descriptor per stream (`just bench` raises the limit as
// far as it may). Where the hard limit cannot be raised (root without CAP_SYS_RESOURCE, as in some
// containers), the steps stop below it, in 5,000s, and the report says so.
var manySteps = settings.ManyConnections;
if (Runs("connections50k") && OpenFilesLimit() is { } limit && limit < manySteps[^1] + 1000)
{
    var cap = (int)(limit - 1000) / 1000 * 1000;
    manySteps = [.. Enumerable.Range(1, cap / 5000).Select(i => i * 5000).Where(s => s < cap), cap];
    report.Note($"Connections 50k: the open-files limit here is {limit} and cannot be raised (`ulimit -Hn` needs CAP_SYS_RESOURCE), so the steps stop at {cap:N0}.");
}
Console.WriteLine($"AMS benchmark ({(smoke ? "smoke" : "full")}) on {Environment.ProcessorCount} cores");
// Durable, as deployed: an fsync per commit (BENCH_DURABLE=0 for the relaxed test setting).
var durable = Environment.GetEnvironmentVariable("BENCH_DURABLE") != "0";
await using var mariadb = await MariaDbServer.StartAsync(durable: durable);
await using var redis = await RedisServer.StartAsync();
await mariadb.CreateDatabaseAsync("ams");
var masterKeys = "bench:" + Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32));
// Load comes from a few hundred users on one address: lift the per-user and per-address limits so it
// measures the server, not the throttles (the 10,000-stream scenario holds many streams per user).
var environment = new Dictionary<string, string>
{
    ["Messaging__MaxSends"] = "100000000",
    ["Registration__MaxPerAddress"] = "100000000",
    ["Conversations__MaxCreates"] = "100000000",
    ["Conversations__MaxReads"] = "100000000",
    ["Events__MaxStreamsPerUser"] = "100000000",
    ["Passwords__QueueTimeoutMs"] = "60000",
    ["Logging__LogLevel__Default"] = "Warning",
    // Its catch-ups (one line each) for the catch-up scenario.
    ["Logging__LogLevel__Ams.Infrastructure.Messaging.EventHub"] = "Information",
    ["Entropy__Background"] = "false",
};
// The nodes run on the GC the binary is built with (src/Ams/Ams.csproj: workstation). BENCH_GC_SERVER
// sets DOTNET_gcServer, which the JIT build honours and the AOT binary only when built with the server GC.
if (Environment.GetEnvironmentVariable("BENCH_GC_SERVER") is { } gcServer) environment["DOTNET_gcServer"] = gcServer;
// Experiments: BENCH_NODE_X=y sets X=y for the AMS nodes only (not for this load-generating process).
foreach (System.Collections.DictionaryEntry variable in Environment.GetEnvironmentVariables())
    if (variable.Key is string name && name.StartsWith("BENCH_NODE_", StringComparison.Ordinal))
        environment[name["BENCH_NODE_".Length..]] = (string)variable.Value!;
Task<AppProcess> Launch(bool native) => native
    ? AppProcess.LaunchAsync(aot, [], mariadb.ConnectionString("ams"), redis.ConnectionString, masterKeys, environment)
    : AppProcess.LaunchAsync("dotnet", [jit], mariadb.ConnectionString("ams"), redis.ConnectionString, masterKeys, environment);

if (Runs("footprint"))
{
    var (builds, firstLaunch) = await Scenarios.FootprintAsync(Launch, aot, jit);
    report.Footprint(builds);
    report.Note($"Start-up is the median of three starts after one unmeasured launch of the AOT binary, which warms this harness's own HTTP client and the page cache; that first launch took {firstLaunch.TotalMilliseconds:F0} ms.");
}

var node1 = await Launch(true);
var node2 = await Launch(true);
Console.WriteLine($"node 1 pid {node1.ProcessId}, node 2 pid {node2.ProcessId}");
try
{
    var cpu = new CpuMeter();
    if (Runs("floor")) report.Add(await Scenarios.FloorAsync(mariadb.ConnectionString("ams"), redis.ConnectionString, settings, cpu));
    if (Runs("send")) report.Add(await Scenarios.SendThroughputAsync(node1.BaseAddress, settings, cpu));
    foreach (var rate in settings.DeliveryRates)
        if (Runs($"delivery-{rate}")) report.Add(await Scenarios.DeliveryAsync(node1.BaseAddress, node2.BaseAddress, [mariadb.ConnectionString("ams")], settings, rate));
    if (Runs("connections")) report.Add(await Scenarios.ConnectionsAsync(node1, settings));
    if (Runs("catchup")) report.Add(await Scenarios.CatchUpAsync(node2, redis, mariadb.ConnectionString("ams"), settings));
    if (Runs("attachments")) report.Add(await AttachmentScenarios.RunAsync(node2, mariadb.ConnectionString("ams"), smoke));
}
finally
{
    await node1.StopAsync();
    await node2.StopAsync();
}
// The delivery floor at the same rates, with the nodes stopped (as for Prosody below), without and
// with HTTP and SSE in the path.
foreach (var rate in settings.DeliveryRates)
    if (Runs($"floordelivery-{rate}")) report.Add(await Scenarios.FloorDeliveryAsync(mariadb.ConnectionString("ams"), redis.ConnectionString, settings, rate));
foreach (var rate in settings.DeliveryRates)
    if (Runs($"httpfloordelivery-{rate}")) report.Add(await HttpFloorScenario.RunAsync(mariadb.ConnectionString("ams"), redis.ConnectionString, settings, rate));
// A node of its own, started fresh, so the steps measure streams and not what earlier scenarios left.
if (Runs("connections50k"))
{
    var node = await Launch(true);
    Console.WriteLine($"connections50k node pid {node.ProcessId}");
    try { report.Add(await Scenarios.ManyConnectionsAsync(node, manySteps, settings)); }
    finally { await node.StopAsync(); }
}

// The same steps as HTTP/2 streams on a node's cleartext HTTP/2 listener, 100 to a connection: they
// need ~500 descriptors where 50,000 HTTP/1.1 connections need 50,000 on each side, so they measure
// the node's own cost per stream to the end whatever the limit.
if (Runs("streams50k"))
{
    var (http, h2c) = (new Uri($"http://127.0.0.1:{FreePort.Next()}"), new Uri($"http://127.0.0.1:{FreePort.Next()}"));
    var node = await AppProcess.LaunchAsync(aot, [], mariadb.ConnectionString("ams"), redis.ConnectionString, masterKeys,
        new Dictionary<string, string>(environment)
        {
            ["Kestrel__Endpoints__Http__Url"] = http.ToString(),
            ["Kestrel__Endpoints__H2c__Url"] = h2c.ToString(),
            ["Kestrel__Endpoints__H2c__Protocols"] = "Http2",
            ["ASPNETCORE_URLS"] = "",
        }, baseAddress: http);
    Console.WriteLine($"streams50k node pid {node.ProcessId}");
    try { report.Add(await Scenarios.ManyStreamsAsync(node, h2c, settings.ManyConnections, settings)); }
    finally { await node.StopAsync(); }
}

// `--cluster`: the same load again on the clustered engines, through HAProxy, after the single
// nodes are stopped.
if (args.Contains("--cluster"))
    foreach (var result in await ClusterScenarios.RunAsync(environment, settings, Runs)) report.Add(result);

// The peer runs alone, after AMS is stopped, so neither competes with the other for the 2 cores.
var peerRates = settings.DeliveryRates.Where(rate => Runs($"prosody-{rate}")).ToArray();
var peerThroughput = Runs("prosody-throughput");
if (peerRates.Length == 0 && !peerThroughput) { }
else if (smoke) report.Note("Prosody peer: not run in the smoke.");
else if (!Prosody.Installed) report.Note("Prosody peer: not measured (install Debian's prosody and lua-dbi-mysql).");
else
    foreach (var result in await PeerScenarios.ProsodyAsync(mariadb, settings, peerRates, peerThroughput)) report.Add(result);

var historyFile = Path.Combine(root, "docs", "benchmarks-history.md");
if (File.Exists(historyFile)) report.History(File.ReadAllText(historyFile));
var output = smoke || only is not null ? Path.Combine(root, "artifacts", "benchmarks.md") : Path.Combine(root, "docs", "benchmarks.md");
report.Write(output);
Console.WriteLine($"wrote {output}");
return report.Failures.Count == 0 ? 0 : 1;

static long? OpenFilesLimit()
{
    if (!File.Exists("/proc/self/limits")) return null;
    var line = File.ReadLines("/proc/self/limits").FirstOrDefault(l => l.StartsWith("Max open files", StringComparison.Ordinal));
    return line?.Split(' ', StringSplitOptions.RemoveEmptyEntries) is [.., var soft, _, _] && long.TryParse(soft, out var value) ? value : null;
}
