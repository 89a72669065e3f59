using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text;
using Ams.Testing;
using Xunit.Abstractions;

namespace Ams.Smoke;

/// <summary>The drill's <see cref="LoopbackCluster"/>, with limits raised for one address sending fast.</summary>
public sealed class ClusterFixture : IAsyncLifetime
{
    public LoopbackCluster Cluster { get; private set; } = null!;

    public async Task InitializeAsync() => Cluster = await LoopbackCluster.StartAsync(new Dictionary<string, string>
    {
        ["Registration__MaxPerAddress"] = "10000", ["Messaging__MaxSends"] = "100000",
    });

    public async Task DisposeAsync()
    {
        if (Cluster is not null) await Cluster.DisposeAsync();
    }
}

/// <summary>
/// The fault drill of <c>just cluster-test</c>: sends go on through HAProxy while the Galera node
/// every AMS node writes through, a Redis master and an AMS node are each paused (SIGSTOP, as a
/// hung or swapped-out machine) and let go on, and then each killed, one after another.
/// </summary>
[Trait("Category", "Cluster")]
public sealed class ClusterDrillTests(ClusterFixture fixture, ITestOutputHelper output) : IClassFixture<ClusterFixture>
{
    LoopbackCluster Cluster => fixture.Cluster;

    [Fact]
    public async Task Through_pauses_and_kills_of_a_Galera_node_a_Redis_master_and_an_AMS_node_every_acknowledged_send_is_stored_once_and_streamed_once()
    {
        try
        {
            await DrillAsync();
        }
        finally
        {
            // A drill that failed mid-pause leaves nothing stopped for the cluster's disposal to wait
            // on (SIGCONT to a process that runs, or is gone, changes nothing).
            try { Cluster.Galera.Resume(0); }
            catch (InvalidOperationException) { }   // killed already
            await Cluster.Nodes[2].ResumeAsync();
            if (pausedRedis is { } port) Cluster.Redis.Resume(port);
            // What the nodes warned about, for the record (and the diagnosis of a failure).
            for (var n = 0; n < Cluster.Nodes.Length; n++)
                foreach (var line in Cluster.Nodes[n].Log.Split('\n').Select((l, i) => (l, i)).Where(x => x.l.StartsWith("warn") || x.l.StartsWith("fail")))
                    output.WriteLine($"node {n + 1}: {line.l} {Cluster.Nodes[n].Log.Split('\n').ElementAtOrDefault(line.i + 1)?.Trim()}");
        }
    }

    /// <summary>
    /// A user registered and signed in through HAProxy. The drill's first sign-in was refused (401)
    /// in 2 of 5 clean-clone CI runs and in none of ~20 runs by hand: a refusal fails with what
    /// each Galera node holds and what each AMS node answers now, to tell an unreplicated row from
    /// a refused password.
    /// </summary>
    async Task<(string Name, HttpClient Client)> UserAsync(string prefix)
    {
        try
        {
            return await SmokeUsers.UserAsync(Cluster.Proxy.Client(), prefix);
        }
        catch (Xunit.Sdk.XunitException e)
        {
            var seen = new StringBuilder(e.Message);
            for (var g = 0; g < 3; g++)
                seen.Append($"\nGalera node {g + 1}:\n").Append(await Cluster.Galera.RootSqlAsync(g,
                    $"SELECT id, username, disabled_at FROM {Cluster.Database}.users; SELECT user_id, kind, at FROM {Cluster.Database}.security_events; " +
                    "SHOW STATUS WHERE Variable_name IN ('wsrep_local_state_comment', 'wsrep_last_committed', 'wsrep_cluster_size')"));
            var names = (await Cluster.Galera.RootSqlAsync(1, $"SELECT username FROM {Cluster.Database}.users")).Split('\n', StringSplitOptions.RemoveEmptyEntries).Skip(1);
            foreach (var name in names)
                for (var n = 0; n < Cluster.Nodes.Length; n++)
                    seen.Append($"\nsign-in of {name} on AMS node {n + 1} now: ").Append((await Cluster.Nodes[n].Client().PostAsJsonAsync("/api/login",
                        new { username = name, password = SmokeUsers.Password })).StatusCode);
            throw new Xunit.Sdk.XunitException(seen.ToString());
        }
    }

    async Task DrillAsync()
    {
        var alice = await UserAsync("da");
        var bob = await UserAsync("db");
        var carol = await UserAsync("dc");
        var conversationId = (await SmokeUsers.JsonAsync(await alice.Client.PostAsJsonAsync("/api/conversations",
            new { members = new[] { bob.Name, carol.Name } }), HttpStatusCode.Created))["id"]!.GetValue<string>();

        // The Redis master to kill serves this conversation's event channel, and each user gets a
        // session stored on it too (a few sign-ins land one there).
        var lowest = await Cluster.ScalarAsync($"SELECT MIN(id) FROM {Cluster.Database}.users WHERE username IN ('{alice.Name}', '{bob.Name}', '{carol.Name}')");
        var doomed = await Cluster.Redis.MasterOfAsync($"ams:events:{lowest % 16}");
        var sessionsOnDoomed = new List<string>();
        foreach (var user in new[] { alice, bob, carol })
            for (var attempt = 0; ; attempt++)
            {
                Assert.True(attempt < 40, "no session landed on the doomed master");
                var token = await LoginAsync(user.Name);
                if (await Cluster.Redis.MasterOfAsync($"ams:session:{Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(token)))}") != doomed) continue;
                sessionsOnDoomed.Add(token);
                break;
            }

        using var stop = new CancellationTokenSource();
        var streams = new[] { new StreamCollector(Cluster.Proxy, Token(bob)), new StreamCollector(Cluster.Proxy, Token(carol)) };
        var reading = streams.Select(s => s.RunAsync(stop.Token)).ToArray();
        await Task.WhenAll(streams.Select(s => s.Opened));

        // Each pause goes on under load while alice keeps sending and ends in the background; the
        // next fault waits for the cluster to be whole again. A paused Galera node and AMS node are
        // let go on after 8 s (the Galera node was evicted after 3 s and rejoins); the paused Redis
        // master once its replica has taken over (it returns as that one's replica).
        var eventsKey = $"ams:events:{lowest % 16}";
        var whole = Task.CompletedTask;
        Task PauseAsync(string what, Func<Task> pause, Func<Task> resume)
        {
            var started = Fault(what, pause);
            whole = started.ContinueWith(_ => resume()).Unwrap();
            return started;
        }
        const int perSender = 150;
        var client = new RetryingClient();
        async Task<List<long>> SendAllAsync((string Name, HttpClient Client) user)
        {
            var ids = new List<long>();
            for (var m = 0; m < perSender; m++)
            {
                ids.Add(await client.SendAsync(user, conversationId, m.ToString()));
                if (user.Name != alice.Name) continue;
                if (m is 40 or 65 or 90 or 110 or 130)
                {
                    await whole;
                    output.WriteLine($"{DateTime.UtcNow:HH:mm:ss.fff} whole again");
                }
                if (m == 15) await PauseAsync("Galera node 1 paused", () => { Cluster.Galera.Pause(0); return Task.CompletedTask; }, async () =>
                {
                    await Task.Delay(TimeSpan.FromSeconds(8));
                    Cluster.Galera.Resume(0);
                    output.WriteLine($"{DateTime.UtcNow:HH:mm:ss.fff} Galera node 1 resumed");
                    await Cluster.Galera.WaitUntilSyncedAsync(0);
                });
                if (m == 40) await PauseAsync($"Redis master :{doomed} paused", () => { Cluster.Redis.Pause(doomed); pausedRedis = doomed; return Task.CompletedTask; }, async () =>
                {
                    var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
                    while (await Cluster.Redis.MasterOfAsync(eventsKey) is var master && (master == doomed || master == 0))
                    {
                        Assert.True(DateTime.UtcNow < deadline, $"no replica took over from the paused master :{doomed}");
                        await Task.Delay(100);
                    }
                    Cluster.Redis.Resume(doomed);
                    pausedRedis = null;
                    output.WriteLine($"{DateTime.UtcNow:HH:mm:ss.fff} Redis :{doomed} resumed, replaced by :{await Cluster.Redis.MasterOfAsync(eventsKey)}");
                    await Cluster.Redis.WaitUntilHealthyAsync(6);
                    await Cluster.Redis.WaitUntilReplicasSyncedAsync();
                });
                if (m == 65) await PauseAsync("AMS node 3 paused", () => Cluster.Nodes[2].PauseAsync(), async () =>
                {
                    await Task.Delay(TimeSpan.FromSeconds(8));
                    await Cluster.Nodes[2].ResumeAsync();
                    output.WriteLine($"{DateTime.UtcNow:HH:mm:ss.fff} AMS node 3 resumed");
                });
                if (m == 90) await Fault("Galera node 1 killed", () => Cluster.Galera.KillAsync(0));
                if (m == 110)
                {
                    // The master of the group's channel and the sessions' slots now: the replica that took over from the pause.
                    doomed = await Cluster.Redis.MasterOfAsync(eventsKey);
                    await Fault($"Redis master :{doomed} killed", () => Cluster.Redis.KillAsync(doomed));
                }
                if (m == 130) await Fault("AMS node 3 killed", () => Cluster.Nodes[2].KillAsync());
            }
            return ids;
        }
        var sent = await Task.WhenAll(SendAllAsync(alice), SendAllAsync(bob));
        var ids = sent.SelectMany(s => s).ToList();
        output.WriteLine($"{ids.Count} sends acknowledged; {client.Retries} answers were 5xx or a dropped connection and were repeated with the same key");
        // How long sends took through each fault, from their first try to their acknowledgement.
        for (var f = 0; f < faults.Count; f++)
        {
            var during = client.Timings.Where(t => t.Started >= faults[f].At && (f + 1 == faults.Count || t.Started < faults[f + 1].At)).OrderBy(t => t.Took).ToList();
            if (during.Count > 0)
                output.WriteLine($"{faults[f].What}: {during.Count} sends, median {during[during.Count / 2].Took.TotalMilliseconds:F0} ms, " +
                    $"longest {during[^1].Took.TotalMilliseconds:F0} ms from {during[^1].Started:HH:mm:ss.fff} ({during[^1].Tries})");
        }
        Assert.Equal(2 * perSender, ids.Distinct().Count());

        // Stored once, numbered without a gap.
        Assert.Equal(ids.Count, await Cluster.ScalarAsync($"SELECT COUNT(*) FROM {Cluster.Database}.messages WHERE conversation_id = {conversationId}"));
        Assert.Equal(ids.Count, await Cluster.ScalarAsync(
            $"SELECT COUNT(*) FROM {Cluster.Database}.messages WHERE conversation_id = {conversationId} AND id IN ({string.Join(',', ids)})"));
        foreach (var name in new[] { alice.Name, bob.Name, carol.Name })
        {
            var user = $"(SELECT id FROM {Cluster.Database}.users WHERE username = '{name}')";
            Assert.Equal(ids.Count, await Cluster.ScalarAsync($"SELECT COUNT(*) FROM {Cluster.Database}.events WHERE user_id = {user} AND kind = 'message'"));
            Assert.Equal(await Cluster.ScalarAsync($"SELECT COUNT(*) FROM {Cluster.Database}.events WHERE user_id = {user}"),
                await Cluster.ScalarAsync($"SELECT MAX(seq) FROM {Cluster.Database}.events WHERE user_id = {user}"));
        }

        // Streamed once to every member's stream, resumed with Last-Event-ID wherever it dropped.
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (streams.Any(s => s.MessageIds.Count < ids.Count) && DateTime.UtcNow < deadline) await Task.Delay(100);
        await stop.CancelAsync();
        await Task.WhenAll(reading);
        foreach (var stream in streams)
        {
            output.WriteLine($"stream: {stream.MessageIds.Count} messages over {stream.Connections} connections");
            Assert.Equal(ids.Order(), stream.MessageIds.Order());
            Assert.Equal(stream.EventIds.Count, stream.EventIds.Distinct().Count());
        }

        // No valid session was lost with the master, and the scripts run on the promoted replica.
        await Cluster.Redis.WaitUntilHealthyAsync(5);
        foreach (var token in sessionsOnDoomed.Concat(new[] { alice, bob, carol }.Select(Token)))
        {
            using var me = Cluster.Proxy.Client();
            me.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
            Assert.Equal(HttpStatusCode.OK, (await me.GetAsync("/api/me")).StatusCode);
        }
        using var guesser = Cluster.Proxy.Client();
        for (var i = 0; i < 5; i++)
            Assert.Equal(HttpStatusCode.Unauthorized, (await guesser.PostAsJsonAsync("/api/login", new { username = carol.Name, password = "wrong " + i })).StatusCode);
        Assert.Equal(HttpStatusCode.TooManyRequests, (await guesser.PostAsJsonAsync("/api/login", new { username = carol.Name, password = "wrong" })).StatusCode);

        // The killed Redis node comes back as a replica.
        await Cluster.Redis.StartAgainAsync(doomed);
    }

    /// <summary>The Redis node paused right now, if any.</summary>
    int? pausedRedis;

    /// <summary>Each fault and when it began.</summary>
    readonly List<(DateTime At, string What)> faults = [];

    async Task Fault(string what, Func<Task> fault)
    {
        faults.Add((DateTime.UtcNow, what));
        await fault();
        output.WriteLine($"{DateTime.UtcNow:HH:mm:ss.fff} {what}");
    }

    async Task<string> LoginAsync(string name)
    {
        using var client = Cluster.Proxy.Client();
        var login = await SmokeUsers.JsonAsync(await client.PostAsJsonAsync("/api/login", new { username = name, password = SmokeUsers.Password }), HttpStatusCode.OK);
        return login["token"]!.GetValue<string>();
    }

    static string Token((string Name, HttpClient Client) user) => user.Client.DefaultRequestHeaders.Authorization!.Parameter!;

    /// <summary>An event stream that, like EventSource, reconnects with Last-Event-ID whenever it drops or is refused.</summary>
    sealed class StreamCollector(ReverseProxy proxy, string token)
    {
        readonly TaskCompletionSource opened = new(TaskCreationOptions.RunContinuationsAsynchronously);
        string? lastEventId;
        public Task Opened => opened.Task;
        public List<long> MessageIds { get; } = [];
        public List<long> EventIds { get; } = [];
        public int Connections { get; private set; }

        public async Task RunAsync(CancellationToken stop)
        {
            using var client = proxy.Client();
            client.Timeout = Timeout.InfiniteTimeSpan;
            client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
            while (!stop.IsCancellationRequested)
            {
                try
                {
                    using var request = new HttpRequestMessage(HttpMethod.Get, "/api/events");
                    request.Headers.Accept.ParseAdd("text/event-stream");
                    if (lastEventId is not null) request.Headers.Add("Last-Event-ID", lastEventId);
                    using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, stop);
                    if (response.StatusCode == HttpStatusCode.OK)
                    {
                        Connections++;
                        opened.TrySetResult();
                        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(stop));
                        string? kind = null, id = null;
                        while (await reader.ReadLineAsync(stop) is { } line)
                        {
                            if (line.StartsWith("id: ")) id = line[4..];
                            else if (line.StartsWith("event: ")) kind = line[7..];
                            else if (line.StartsWith("data: ") && kind == "message")
                            {
                                MessageIds.Add(long.Parse(JsonNode.Parse(line[6..])!["id"]!.GetValue<string>()));
                                EventIds.Add(long.Parse(id!));
                                lastEventId = id;
                            }
                            else if (line.Length == 0)
                            {
                                lastEventId = id ?? lastEventId;
                                (kind, id) = (null, null);
                            }
                        }
                    }
                }
                catch (Exception e) when (e is HttpRequestException or IOException || (e is OperationCanceledException && !stop.IsCancellationRequested)) { }
                catch (OperationCanceledException) { return; }
                try { await Task.Delay(100, stop); }
                catch (OperationCanceledException) { return; }
            }
        }
    }
}
