using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using Ams.Testing;
using HdrHistogram;
using MySqlConnector;
using StackExchange.Redis;

namespace Ams.Bench;

/// <param name="DeliveryRates">The fixed send rates at which AMS, then Prosody, deliver (each for Duration).</param>
/// <param name="ManyConnections">The steps of the many-connections scenario.</param>
/// <param name="PerSourceAddress">The many-connections scenario's connections per loopback source address.</param>
sealed record Settings(TimeSpan Duration, int Concurrency, int[] DeliveryRates, int Connections, int BurstMessages, int[] ManyConnections, int PerSourceAddress)
{
    public static readonly Settings Smoke = new(TimeSpan.FromSeconds(2), 8, [200], 50, 5, [20, 40], 20);
    public static readonly Settings Full = new(TimeSpan.FromSeconds(20), 64, [200, 500, 1000], 10_000, 20, [10_000, 20_000, 30_000, 40_000, 50_000], 10_000);
}

sealed record Result(string Name, string What, LongHistogram? Latency, List<(string Figure, string Value)> Figures, List<string> Failures)
{
    public double Rate { get; init; }
    /// <summary>The fixed rate a delivery scenario was asked for (0 for the others).</summary>
    public int TargetRate { get; init; }
    public long Lost { get; init; }
    public long Duplicated { get; init; }
    public long ResidentBytes { get; init; }
    /// <summary>The connections scenarios: RSS before any stream, and after each step of open streams.</summary>
    public long ResidentBefore { get; init; }
    public List<(int Connections, long ResidentBytes)> Steps { get; init; } = [];
}

sealed record Footprint(string Build, long SizeBytes, TimeSpan FirstOk, long IdleRssBytes);

static class Scenarios
{
    // Microsecond resolution, up to a minute.
    internal static LongHistogram NewHistogram() => new(TimeStamp.Minutes(1), 3);
    internal static void Record(LongHistogram h, long startTicks) { lock (h) h.RecordValue(Math.Max(1, Stopwatch.GetTimestamp() - startTicks)); }
    internal static double Milliseconds(LongHistogram h, double percentile) => h.GetValueAtPercentile(percentile) * 1000.0 / Stopwatch.Frequency;

    public static async Task<(List<Footprint> Builds, TimeSpan FirstLaunch)> FootprintAsync(Func<bool, Task<AppProcess>> launch, string aot, string jit)
    {
        var results = new List<Footprint>();
        // One launch first, not measured: it warms this harness's own HTTP client and the page
        // cache, which are not the app's start-up. Then the median of three starts.
        var first = await launch(true);
        await first.StopAsync();
        Console.WriteLine($"first launch, unmeasured: {first.StartToFirstOk.TotalMilliseconds:F0} ms");
        foreach (var native in new[] { true, false })
        {
            var starts = new List<TimeSpan>();
            long rss = 0;
            for (var run = 0; run < 3; run++)
            {
                var launched = await launch(native);
                starts.Add(launched.StartToFirstOk);
                if (run == 2)
                {
                    await Task.Delay(TimeSpan.FromSeconds(3));   // idle: after startup work settles
                    rss = launched.ResidentBytes();
                }
                await launched.StopAsync();
            }
            starts.Sort();
            Console.WriteLine($"starts {(native ? "aot" : "jit")}: {string.Join(", ", starts.Select(t => $"{t.TotalMilliseconds:F0} ms"))}");
            var size = native
                ? new FileInfo(aot).Length
                : JitFiles(Path.GetDirectoryName(jit)!).Sum(f => f.Length);
            results.Add(new Footprint(native ? "Native AOT" : "JIT (framework-dependent)", size, starts[1], rss));
            Console.WriteLine($"footprint {results[^1]}");
        }
        return (results, first.StartToFirstOk);
    }

    // What a framework-dependent linux-x64 deployment ships: the build output without the AOT
    // intermediates (linux-x64/) and without other platforms' native libraries.
    static IEnumerable<FileInfo> JitFiles(string directory) =>
        new DirectoryInfo(directory).EnumerateFiles("*", SearchOption.AllDirectories).Where(f =>
        {
            var relative = Path.GetRelativePath(directory, f.FullName).Replace('\\', '/');
            return !relative.StartsWith("linux-x64/") && (!relative.StartsWith("runtimes/") || relative.StartsWith("runtimes/linux-x64/"));
        });

    internal const string FloorInsert = "INSERT INTO bench_floor (conversation_id, sender_id, body, sent_at) VALUES (@c, @s, @b, UTC_TIMESTAMP(3))";

    internal static async Task CreateFloorTableAsync(string mariaDb)
    {
        await using var setup = new MySqlConnection(mariaDb);
        await setup.OpenAsync();
        await new MySqlCommand("""
            CREATE TABLE IF NOT EXISTS bench_floor (id BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY, conversation_id BIGINT UNSIGNED NOT NULL,
            sender_id BIGINT UNSIGNED NOT NULL, body VARBINARY(200) NOT NULL, sent_at DATETIME(3) NOT NULL) ENGINE=InnoDB
            """, setup).ExecuteNonQueryAsync();
    }

    /// <summary>The same insert and publish a send does, straight from the client libraries: the ceiling.</summary>
    public static async Task<Result> FloorAsync(string mariaDb, string redisConfiguration, Settings settings, CpuMeter cpu)
    {
        await CreateFloorTableAsync(mariaDb);
        await using var redis = await ConnectionMultiplexer.ConnectAsync(redisConfiguration);
        var channel = RedisChannel.Literal("bench:floor");
        var histogram = NewHistogram();
        long ops = 0;
        var until = Stopwatch.GetTimestamp() + (long)(settings.Duration.TotalSeconds * Stopwatch.Frequency);
        var started = Stopwatch.StartNew();
        cpu.Start();
        await Task.WhenAll(Enumerable.Range(0, settings.Concurrency).Select(async worker =>
        {
            var body = new byte[60];
            while (Stopwatch.GetTimestamp() < until)
            {
                var start = Stopwatch.GetTimestamp();
                await using (var connection = new MySqlConnection(mariaDb))
                {
                    await connection.OpenAsync();
                    await using var insert = new MySqlCommand(
                        FloorInsert, connection);
                    insert.Parameters.AddWithValue("@c", worker);
                    insert.Parameters.AddWithValue("@s", worker);
                    insert.Parameters.AddWithValue("@b", body);
                    await insert.ExecuteNonQueryAsync();
                }
                await redis.GetSubscriber().PublishAsync(channel, body);
                Record(histogram, start);
                Interlocked.Increment(ref ops);
            }
        }));
        var rate = ops / started.Elapsed.TotalSeconds;
        var spent = cpu.Stop(ops);
        Console.WriteLine($"floor {rate:F0}/s; {spent.Figure}: {spent.Value}");
        return new Result("Floor", $"INSERT + PUBLISH with MySqlConnector and StackExchange.Redis, {settings.Concurrency} concurrent, no HTTP, crypto or validation",
            histogram, [("operations/s", $"{rate:F0}"), spent], []) { Rate = rate };
    }

    static async Task<List<(string Sender, string Token, string Recipient, string RecipientToken, string Conversation)>> PairsAsync(Uri node, int count)
    {
        var pairs = new List<(string, string, string, string, string)>();
        for (var i = 0; i < count; i++)
        {
            var (sender, token) = await Client.UserAsync(node, "s");
            var (recipient, recipientToken) = await Client.UserAsync(node, "r");
            pairs.Add((sender, token, recipient, recipientToken, await Client.DirectAsync(node, token, recipient)));
        }
        return pairs;
    }

    /// <summary>Concurrent senders over keep-alive HTTP with bearer tokens, as fast as the node answers.</summary>
    public static async Task<Result> SendThroughputAsync(Uri node, Settings settings, CpuMeter cpu)
    {
        var pairs = await PairsAsync(node, settings.Concurrency);
        var histogram = NewHistogram();
        long sent = 0, failed = 0;
        var until = Stopwatch.GetTimestamp() + (long)(settings.Duration.TotalSeconds * Stopwatch.Frequency);
        var started = Stopwatch.StartNew();
        cpu.Start();
        await Task.WhenAll(pairs.Select(async pair =>
        {
            using var client = Client.For(node, pair.Token);
            var n = 0;
            while (Stopwatch.GetTimestamp() < until)
            {
                var start = Stopwatch.GetTimestamp();
                using var response = await client.PostAsJsonAsync("/api/messages", new { conversationId = pair.Conversation, body = $"throughput {n++}" });
                if (response.IsSuccessStatusCode) { Record(histogram, start); Interlocked.Increment(ref sent); }
                else Interlocked.Increment(ref failed);
            }
        }));
        var rate = sent / started.Elapsed.TotalSeconds;
        var spent = cpu.Stop(sent);
        Console.WriteLine($"send throughput {rate:F0}/s ({failed} failed); {spent.Figure}: {spent.Value}");
        return new Result("Send throughput", $"POST /api/messages, {settings.Concurrency} concurrent senders, one node (AOT)",
            histogram, [("sends/s", $"{rate:F0}"), ("failed", $"{failed}"), spent], failed == 0 ? [] : [$"{failed} sends failed"]) { Rate = rate };
    }

    /// <summary>Senders on node 1 at a fixed rate, subscribers on node 2: send → SSE receipt, every message checked.</summary>
    /// <param name="mariaDbs">Every server that stores the messages (each Galera node applies every write), to quiesce first.</param>
    public static async Task<Result> DeliveryAsync(Uri node1, Uri node2, IReadOnlyList<string> mariaDbs, Settings settings, int rate)
    {
        await Task.WhenAll(mariaDbs.Select(QuiesceAsync));
        var pairs = await PairsAsync(node1, Math.Min(50, settings.Concurrency * 2));
        var sentAt = new ConcurrentDictionary<string, long>();
        var received = new ConcurrentDictionary<string, int>();
        var histogram = NewHistogram();
        var posts = NewHistogram();   // send → 201, to tell storing from delivering
        var measuring = false;
        var streams = new List<Sse>();
        foreach (var pair in pairs)
            streams.Add(await Sse.OpenAsync(node2, pair.RecipientToken, body =>
            {
                if (received.AddOrUpdate(body, 1, (_, n) => n + 1) == 1 && Volatile.Read(ref measuring) && sentAt.TryGetValue(body, out var start))
                    Record(histogram, start);
            }));
        var clients = pairs.Select(p => Client.For(node1, p.Token)).ToArray();
        long failed = 0;
        async Task SendAsync(int pair, string body, bool measured)
        {
            var start = Stopwatch.GetTimestamp();
            sentAt[body] = start;
            try
            {
                using var response = await clients[pair].PostAsJsonAsync("/api/messages", new { conversationId = pairs[pair].Conversation, body });
                if (!response.IsSuccessStatusCode) { Interlocked.Increment(ref failed); sentAt.TryRemove(body, out _); }
                else if (measured) Record(posts, start);
            }
            catch (HttpRequestException)
            {
                // A connection dropped (e.g. by a proxy): counted as a failed send, as a 5xx is.
                Interlocked.Increment(ref failed);
                sentAt.TryRemove(body, out _);
            }
        }
        // Not measured: one send per pair first, so each client's connection is open (Prosody's
        // clients are connected before its run too) and the first timed sends do not pay the
        // TCP handshake; checked for loss like the rest.
        await Task.WhenAll(Enumerable.Range(0, pairs.Count).Select(p => SendAsync(p, $"warm-up {p}", false)));
        await WaitForAsync(() => pairs.Count(p => received.ContainsKey($"warm-up {p}")) == pairs.Count, TimeSpan.FromSeconds(10));
        Volatile.Write(ref measuring, true);

        var achieved = await PaceAsync(rate, settings.Duration, i => SendAsync(i % pairs.Count, $"delivery {i}", true));
        await DrainAsync(sentAt, received);
        foreach (var stream in streams) await stream.DisposeAsync();
        foreach (var client in clients) client.Dispose();
        var lost = sentAt.Keys.Count(k => !received.ContainsKey(k));
        var duplicated = received.Values.Count(n => n > 1);
        Console.WriteLine($"delivery at {achieved:F0}/s (asked {rate}/s): {sentAt.Count} sent, {lost} lost, {duplicated} duplicated, {failed} failed; " +
            $"p50/p99 {Milliseconds(histogram, 50):F2}/{Milliseconds(histogram, 99):F2} ms, 201 p50/p99 {Milliseconds(posts, 50):F2}/{Milliseconds(posts, 99):F2} ms");
        var failures = new List<string>();
        if (lost > 0) failures.Add($"{lost} messages lost");
        if (duplicated > 0) failures.Add($"{duplicated} messages delivered twice");
        if (failed > 0) failures.Add($"{failed} sends failed");
        return new Result($"Delivery {rate}/s", $"send on node 1 → SSE on node 2, {rate}/s for {settings.Duration.TotalSeconds:F0} s, {pairs.Count} conversations",
            histogram, [("rate achieved/s", $"{achieved:F0}"), ("sent", $"{sentAt.Count}"), ("lost", $"{lost}"), ("duplicated", $"{duplicated}"),
                ("201 p50/p99 (ms)", $"{Milliseconds(posts, 50):F1}/{Milliseconds(posts, 99):F1}")], failures)
            { Rate = achieved, TargetRate = rate, Lost = lost, Duplicated = duplicated };
    }

    /// <summary>Starts <paramref name="send"/>(0, 1, …) at <paramref name="rate"/> a second for <paramref name="duration"/>, each on its own (at most 512 at once); the rate achieved.</summary>
    internal static async Task<double> PaceAsync(int rate, TimeSpan duration, Func<int, Task> send)
    {
        var total = (int)(rate * duration.TotalSeconds);
        var inFlight = new SemaphoreSlim(512);
        var tasks = new List<Task>(total);
        var started = Stopwatch.GetTimestamp();
        for (var i = 0; i < total; i++)
        {
            var due = started + (long)(i * (double)Stopwatch.Frequency / rate);
            var wait = due - Stopwatch.GetTimestamp();
            if (wait > Stopwatch.Frequency / 1000) await Task.Delay(TimeSpan.FromSeconds((double)wait / Stopwatch.Frequency));
            await inFlight.WaitAsync();
            var n = i;
            tasks.Add(Task.Run(async () =>
            {
                try { await send(n); }
                finally { inFlight.Release(); }
            }));
        }
        await Task.WhenAll(tasks);
        return total / ((double)(Stopwatch.GetTimestamp() - started) / Stopwatch.Frequency);
    }

    /// <summary>
    /// The delivery floor: what the machine's own parts take for a delivery at a fixed rate, with no
    /// AMS in the path. Each send is the floor's durable INSERT on a pooled connection and a PUBLISH;
    /// a second Redis connection (node 2's part) receives it. No HTTP, SSE, crypto, event numbers or
    /// second statement: a lower bound for any design that stores a message before it delivers it.
    /// </summary>
    public static async Task<Result> FloorDeliveryAsync(string mariaDb, string redisConfiguration, Settings settings, int rate)
    {
        await QuiesceAsync(mariaDb);
        await CreateFloorTableAsync(mariaDb);
        await using var publisher = await ConnectionMultiplexer.ConnectAsync(redisConfiguration);
        await using var subscriber = await ConnectionMultiplexer.ConnectAsync(redisConfiguration);
        const int pairs = 50;   // as many recipients as the AMS delivery scenario has
        var sentAt = new ConcurrentDictionary<string, long>();
        var received = new ConcurrentDictionary<string, int>();
        var histogram = NewHistogram();
        for (var p = 0; p < pairs; p++)
            await subscriber.GetSubscriber().SubscribeAsync(RedisChannel.Literal($"bench:floor-delivery:{p}"), (_, message) =>
            {
                var body = (string)message!;
                if (received.AddOrUpdate(body, 1, (_, n) => n + 1) == 1 && !body.StartsWith("warm-up", StringComparison.Ordinal)
                    && sentAt.TryGetValue(body, out var start)) Record(histogram, start);
            });
        long failed = 0;
        async Task SendAsync(string body, int i)
        {
            sentAt[body] = Stopwatch.GetTimestamp();
            try
            {
                await using (var connection = new MySqlConnection(mariaDb))
                {
                    await connection.OpenAsync();
                    await using var insert = new MySqlCommand(
                        FloorInsert, connection);
                    insert.Parameters.AddWithValue("@c", i % pairs);
                    insert.Parameters.AddWithValue("@s", i % pairs);
                    insert.Parameters.AddWithValue("@b", System.Text.Encoding.UTF8.GetBytes(body));
                    await insert.ExecuteNonQueryAsync();
                }
                await publisher.GetSubscriber().PublishAsync(RedisChannel.Literal($"bench:floor-delivery:{i % pairs}"), body);
            }
            catch (Exception e) when (e is MySqlException or RedisException or TimeoutException)
            {
                Interlocked.Increment(ref failed);
                sentAt.TryRemove(body, out _);
            }
        }
        // Not measured, as for AMS: the pool's connections are opened first.
        await Task.WhenAll(Enumerable.Range(0, pairs).Select(p => SendAsync($"warm-up {p}", p)));
        var achieved = await PaceAsync(rate, settings.Duration, i => SendAsync($"delivery {i}", i));
        await DrainAsync(sentAt, received);
        var lost = sentAt.Keys.Count(k => !received.ContainsKey(k));
        var duplicated = received.Values.Count(n => n > 1);
        Console.WriteLine($"floor delivery at {achieved:F0}/s (asked {rate}/s): {sentAt.Count} sent, {lost} lost, {failed} failed; " +
            $"p50/p99 {Milliseconds(histogram, 50):F2}/{Milliseconds(histogram, 99):F2} ms");
        return new Result($"Floor delivery {rate}/s", $"INSERT (durable) + PUBLISH → a second Redis connection, {rate}/s for {settings.Duration.TotalSeconds:F0} s, {pairs} channels, no HTTP, SSE or crypto",
            histogram, [("rate achieved/s", $"{achieved:F0}"), ("sent", $"{sentAt.Count}"), ("lost", $"{lost}")],
            lost + failed == 0 ? [] : [$"floor delivery: {lost} lost, {failed} failed"])
            { Rate = achieved, TargetRate = rate, Lost = lost, Duplicated = duplicated };
    }

    /// <summary>
    /// Lets MariaDB write out the dirty pages an earlier scenario left (the send scenario stores
    /// ~80,000 messages), so a delivery run, AMS's or Prosody's, does not pay for its predecessor's
    /// checkpoints: measured, Prosody at 200/s right after AMS's runs had p50 1.4 s, alone 2.1 ms.
    /// </summary>
    internal static async Task QuiesceAsync(string mariaDb)
    {
        await using var connection = new MySqlConnection(mariaDb);
        await connection.OpenAsync();
        var previous = await new MySqlCommand("SELECT @@GLOBAL.innodb_max_dirty_pages_pct", connection).ExecuteScalarAsync();
        await new MySqlCommand("SET GLOBAL innodb_max_dirty_pages_pct = 0", connection).ExecuteNonQueryAsync();
        var waited = Stopwatch.StartNew();
        long dirty;
        do
        {
            await Task.Delay(200);
            await using var status = new MySqlCommand("SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'INNODB_BUFFER_POOL_PAGES_DIRTY'", connection);
            dirty = Convert.ToInt64(await status.ExecuteScalarAsync(), System.Globalization.CultureInfo.InvariantCulture);
        } while (dirty > 0 && waited.Elapsed < TimeSpan.FromSeconds(60));
        await using var restore = new MySqlCommand("SET GLOBAL innodb_max_dirty_pages_pct = @pct", connection);
        restore.Parameters.AddWithValue("@pct", previous);
        await restore.ExecuteNonQueryAsync();
        Console.WriteLine($"MariaDB quiesced in {waited.Elapsed.TotalSeconds:F1} s ({dirty} dirty pages left)");
    }

    static async Task WaitForAsync(Func<bool> done, TimeSpan limit)
    {
        var waited = Stopwatch.StartNew();
        while (!done() && waited.Elapsed < limit) await Task.Delay(10);
    }

    /// <summary>
    /// Waits for the stragglers: until everything sent has arrived, or nothing more arrived for
    /// 10 s. A server that fell behind (Prosody at 1,000/s) is slow, not lossy, as long as it keeps
    /// delivering.
    /// </summary>
    internal static async Task DrainAsync(ConcurrentDictionary<string, long> sentAt, ConcurrentDictionary<string, int> received)
    {
        var count = received.Count;
        var quiet = Stopwatch.StartNew();
        while (received.Count < sentAt.Count && quiet.Elapsed < TimeSpan.FromSeconds(10))
        {
            await Task.Delay(50);
            if (received.Count == count) continue;
            count = received.Count;
            quiet.Restart();
        }
    }

    /// <summary>Many idle SSE connections on one node: memory per connection, then a burst delivered to all of them.</summary>
    public static Task<Result> ConnectionsAsync(AppProcess node, Settings settings) =>
        ConnectionsAsync(node, "Connections", [settings.Connections], settings.BurstMessages, Http1(node, settings.PerSourceAddress), "SSE connections");

    /// <summary>The same, in steps up to 50,000 on a node of its own: whether memory per connection stays flat.</summary>
    public static Task<Result> ManyConnectionsAsync(AppProcess node, int[] steps, Settings settings) =>
        ConnectionsAsync(node, "Connections 50k", steps, Math.Max(1, settings.BurstMessages / 4), Http1(node, settings.PerSourceAddress), "SSE connections");

    /// <summary>
    /// The steps up to 50,000 again as HTTP/2 streams on the node's cleartext HTTP/2 listener
    /// (<paramref name="h2c"/>), 100 to a connection: what the node spends per stream where its
    /// open-files limit keeps that many HTTP/1.1 connections from being measured.
    /// </summary>
    public static async Task<Result> ManyStreamsAsync(AppProcess node, Uri h2c, int[] steps, Settings settings)
    {
        using var client = H2Sse.Client(h2c);
        return await ConnectionsAsync(node, "Streams 50k", steps, Math.Max(1, settings.BurstMessages / 4),
            async (_, token, onBody) => await H2Sse.OpenAsync(client, token, onBody), "SSE streams over HTTP/2 (100 to a connection)", "stream");
    }

    static Func<int, string, Action<string>, Task<IDisposable>> Http1(AppProcess node, int perSourceAddress)
    {
        var server = new IPEndPoint(IPAddress.Parse(node.BaseAddress.Host), node.BaseAddress.Port);
        // 127.0.0.2, .3, …: loopback offers fewer than 30,000 ephemeral ports per source address.
        return async (i, token, onBody) => await LeanSse.OpenAsync(server, new IPAddress([127, 0, 0, (byte)(2 + i / perSourceAddress)]), token, onBody);
    }

    /// <summary>The node's own GC figures from /metrics (System.Runtime), for telling live objects from what the GC keeps.</summary>
    static async Task<string> GcFiguresAsync(Uri node)
    {
        using var client = Client.For(node);
        var text = await client.GetStringAsync("/metrics");
        return string.Join(", ", text.Split('\n')
            .Where(l => l.StartsWith("dotnet_gc_last_collection_", StringComparison.Ordinal) || l.StartsWith("dotnet_gc_collections", StringComparison.Ordinal))
            .Select(l => l.Replace("dotnet_gc_", "")));
    }

    /// <summary>
    /// Idle streams of 100 users (5 in the smoke) on one node, each up to date, then a Redis restart that keeps its
    /// data (sessions survive), twice: what the node's catch-up asks of MariaDB with nobody sending,
    /// then how sends fare while it runs (one every 50 ms for half the scenario duration from
    /// Redis's return), and whether every stream is still live after.
    /// </summary>
    public static async Task<Result> CatchUpAsync(AppProcess node, RedisServer redis, string mariaDb, Settings settings)
    {
        var users = Math.Min(100, settings.Connections / 10);
        var (_, senderToken) = await Client.UserAsync(node.BaseAddress, "ks");
        var listeners = new List<(string Token, string Conversation)>();
        for (var u = 0; u < users; u++)
        {
            var (name, token) = await Client.UserAsync(node.BaseAddress, "kl");
            listeners.Add((token, await Client.DirectAsync(node.BaseAddress, senderToken, name)));
        }
        var server = new IPEndPoint(IPAddress.Parse(node.BaseAddress.Host), node.BaseAddress.Port);
        var received = new ConcurrentDictionary<string, int>();
        var streams = new LeanSse[settings.Connections];
        using var sender = Client.For(node.BaseAddress, senderToken);
        async Task<int> EveryoneGetsAsync(string body)
        {
            await Task.WhenAll(listeners.Select(async l =>
                (await sender.PostAsJsonAsync("/api/messages", new { conversationId = l.Conversation, body = $"{body} {l.Conversation}" })).EnsureSuccessStatusCode()));
            var wait = Stopwatch.StartNew();
            int Count() => listeners.Sum(l => received.GetValueOrDefault($"{body} {l.Conversation}"));
            while (Count() < streams.Length && wait.Elapsed < TimeSpan.FromSeconds(60)) await Task.Delay(50);
            return Count();
        }
        async Task<long> StatementsAsync()
        {
            await using var connection = new MySqlConnection(mariaDb);
            await connection.OpenAsync();
            await using var status = new MySqlCommand("SHOW GLOBAL STATUS LIKE 'Questions'", connection);
            await using var reader = await status.ExecuteReaderAsync();
            await reader.ReadAsync();
            return long.Parse(reader.GetString(1), System.Globalization.CultureInfo.InvariantCulture);
        }
        async Task<(LongHistogram Latency, int Failed, int Sent)> SendForAsync(TimeSpan window)
        {
            var histogram = NewHistogram();
            var failed = 0;
            var sends = new List<Task>();
            var clock = Stopwatch.StartNew();
            for (var i = 0; clock.Elapsed < window; i++)
            {
                var started = Stopwatch.GetTimestamp();
                var conversation = listeners[i % users].Conversation;
                sends.Add(Task.Run(async () =>
                {
                    using var response = await sender.PostAsJsonAsync("/api/messages", new { conversationId = conversation, body = "meanwhile" });
                    if (response.IsSuccessStatusCode) Record(histogram, started);
                    else Interlocked.Increment(ref failed);
                }));
                await Task.Delay(50);
            }
            await Task.WhenAll(sends);
            return (histogram, failed, sends.Count);
        }
        try
        {
            await Parallel.ForAsync(0, streams.Length, new ParallelOptions { MaxDegreeOfParallelism = 32 }, async (i, _) =>
                streams[i] = await LeanSse.OpenAsync(server, new IPAddress([127, 0, 0, (byte)(2 + i / settings.PerSourceAddress)]), listeners[i % users].Token,
                    body => received.AddOrUpdate(body, 1, (_, n) => n + 1)));
            var before = await EveryoneGetsAsync("before");

            // The same sends with Redis up first, for the statements they cost on their own.
            var window = settings.Duration / 2;
            var statements = await StatementsAsync();
            var (_, _, quietSends) = await SendForAsync(window);
            var quiet = await StatementsAsync() - statements;

            async Task RestartRedisAsync()
            {
                await using (var admin = await ConnectionMultiplexer.ConnectAsync(redis.ConnectionString + ",allowAdmin=true"))
                    await admin.GetDatabase().ExecuteAsync("SAVE");
                await redis.StopAsync();
                await Task.Delay(TimeSpan.FromSeconds(1));
            }
            // First a restart with nobody sending: what the catch-up alone costs when every stream is up to date.
            await RestartRedisAsync();
            statements = await StatementsAsync();
            await redis.StartAgainAsync();
            int CatchUps() => node.Log.Split('\n').Count(l => l.Contains(" streams replay what Redis", StringComparison.Ordinal));
            // At least the window, and (the smoke's window is short) until the node has reconnected and caught up.
            var idleWait = Stopwatch.StartNew();
            while (idleWait.Elapsed < window || (CatchUps() < 2 && idleWait.Elapsed < TimeSpan.FromSeconds(15))) await Task.Delay(100);
            var idle = await StatementsAsync() - statements;
            var idleCatchUps = CatchUps();

            await RestartRedisAsync();
            statements = await StatementsAsync();
            await redis.StartAgainAsync();
            var (histogram, failed, catchUpSends) = await SendForAsync(window);
            var catchUp = await StatementsAsync() - statements - quiet * catchUpSends / Math.Max(1, quietSends);
            var after = await EveryoneGetsAsync("after");
            var catchUps = node.Log.Split('\n').Where(l => l.Contains(" streams replay what Redis", StringComparison.Ordinal)).ToList();
            foreach (var line in catchUps) Console.WriteLine($"catch-up, node: {line.Trim()}");
            Console.WriteLine($"catch-up: {streams.Length} streams of {users} users; idle restart: {idleCatchUps} catch-ups, {idle} MariaDB statements; " +
                $"restart while sending: {catchUps.Count - idleCatchUps} catch-ups, MariaDB statements besides the sends {catchUp}; sends p50/p99/max " +
                $"{Milliseconds(histogram, 50):F1}/{Milliseconds(histogram, 99):F1}/{histogram.GetMaxValue() * 1000.0 / Stopwatch.Frequency:F0} ms, {failed} failed; live before/after {before}/{after}");
            return new Result("Catch-up", $"{streams.Length} idle streams of {users} users, all up to date, then Redis restarted with its data twice: with nobody sending, then with a send every 50 ms for {window.TotalSeconds:F0} s from Redis's return",
                histogram,
                [("MariaDB statements, a restart with nobody sending", $"{idle:N0}"),
                    ("MariaDB statements, a restart while sending, besides the sends' own (measured with Redis up)", $"{catchUp:N0}"), ("streams live before / after", $"{before} / {after}"), ("sends failed", $"{failed}")],
                after == streams.Length && failed == 0 ? [] : [$"{streams.Length - after} streams no longer live, {failed} sends failed"]);
        }
        finally
        {
            foreach (var stream in streams) stream?.Dispose();
        }
    }

    // RSS is read 2 s after the last connection of a step has its response headers (every stream
    // is registered with the hub by then), never while connections are still opening.
    static async Task<Result> ConnectionsAsync(AppProcess node, string name, int[] steps, int burst,
        Func<int, string, Action<string>, Task<IDisposable>> open, string what, string unit = "connection")
    {
        var (_, senderToken) = await Client.UserAsync(node.BaseAddress, "cs");
        var (listener, listenerToken) = await Client.UserAsync(node.BaseAddress, "cl");
        var conversation = await Client.DirectAsync(node.BaseAddress, senderToken, listener);
        var before = node.ResidentBytes();
        var sentAt = new ConcurrentDictionary<string, long>();
        var histogram = NewHistogram();
        long deliveries = 0;
        var streams = new IDisposable[steps[^1]];
        var figures = new List<(string Figure, string Value)> { ("RSS before (MB)", $"{before / 1048576.0:F0}") };
        long after = 0;
        var opened = 0;
        var measured = new List<(int, long)>();
        try
        {
            foreach (var step in steps)
            {
                var clock = Stopwatch.StartNew();
                await Parallel.ForAsync(opened, step, new ParallelOptions { MaxDegreeOfParallelism = 32 }, async (i, _) =>
                    streams[i] = await open(i, listenerToken, body =>
                    {
                        if (sentAt.TryGetValue(body, out var start)) { Record(histogram, start); Interlocked.Increment(ref deliveries); }
                    }));
                opened = step;
                var openSeconds = clock.Elapsed.TotalSeconds;
                await Task.Delay(TimeSpan.FromSeconds(2));
                after = node.ResidentBytes();
                measured.Add((step, after));
                var perConnection = (after - before) / (double)step / 1024;
                Console.WriteLine($"{name}: {step} open in {openSeconds:F0} s, RSS {after / 1048576} MB, {perConnection:F1} KB each; {await GcFiguresAsync(node.BaseAddress)}");
                figures.Add(steps.Length == 1
                    ? ("RSS after (MB)", $"{after / 1048576.0:F0}")
                    : ($"{step / 1000.0:0.#}k: RSS (MB)", $"{after / 1048576.0:F0}"));
                figures.Add((steps.Length == 1 ? $"per {unit} (KB)" : $"{step / 1000.0:0.#}k: per {unit} (KB)", $"{perConnection:F1}"));
            }
            using (var client = Client.For(node.BaseAddress, senderToken))
                for (var i = 0; i < burst; i++)
                {
                    var body = $"burst {i}";
                    sentAt[body] = Stopwatch.GetTimestamp();
                    (await client.PostAsJsonAsync("/api/messages", new { conversationId = conversation, body })).EnsureSuccessStatusCode();
                }
            var expected = (long)opened * burst;
            var wait = Stopwatch.StartNew();
            while (Interlocked.Read(ref deliveries) < expected && wait.Elapsed < TimeSpan.FromSeconds(60)) await Task.Delay(50);
            Console.WriteLine($"{name}: {opened} {what}, RSS {before / 1048576} → {after / 1048576} MB, {deliveries}/{expected} deliveries");
            figures.Add(("deliveries", $"{deliveries}/{expected}"));
            return new Result(name, $"{opened} idle {what} on one node{(steps.Length > 1 ? $" (a node of its own), opened in steps of {steps[0]}" : "")}; a burst of {burst} messages to all of them",
                histogram, figures, deliveries == expected ? [] : [$"{expected - deliveries} burst deliveries missing"]) { ResidentBytes = after, ResidentBefore = before, Steps = measured };
        }
        finally
        {
            foreach (var stream in streams) stream?.Dispose();
        }
    }
}

static class PeerScenarios
{
    /// <summary>
    /// Prosody doing AMS's delivery job: each fixed rate in turn, every message checked, then a
    /// 64-deep window as fast as it goes. Each phase connects its own clients.
    /// </summary>
    public static async Task<List<Result>> ProsodyAsync(MariaDbServer mariadb, Settings settings, int[] rates, bool throughput)
    {
        const int pairs = 10;
        var senders = Enumerable.Range(0, pairs).Select(i => $"ps{i}").ToArray();
        var recipients = Enumerable.Range(0, pairs).Select(i => $"pr{i}").ToArray();
        await using var prosody = await Prosody.StartAsync(mariadb, senders.Concat(recipients));
        var results = new List<Result>();

        foreach (var rate in throughput ? [.. rates, 0] : rates)
        {
            var phase = rate == 0 ? "throughput" : $"{rate}/s";
            await Scenarios.QuiesceAsync(mariadb.ConnectionString("prosody"));
            var sentAt = new ConcurrentDictionary<string, long>();
            var received = new ConcurrentDictionary<string, int>();
            var histogram = Scenarios.NewHistogram();
            var window = new SemaphoreSlim(settings.Concurrency);
            var measuring = false;
            var listeners = new List<Xmpp>();
            foreach (var recipient in recipients)
                listeners.Add(await Xmpp.ConnectAsync(prosody.Port, recipient, body =>
                {
                    if (received.AddOrUpdate(body, 1, (_, n) => n + 1) != 1 || !Volatile.Read(ref measuring) || !sentAt.TryGetValue(body, out var start)) return;
                    Scenarios.Record(histogram, start);
                    if (rate == 0) window.Release();
                }));
            var clients = new List<Xmpp>();
            foreach (var sender in senders) clients.Add(await Xmpp.ConnectAsync(prosody.Port, sender, null));
            // As for AMS: one message per pair first, not measured (Prosody opens its archive
            // store and SQL connection on first use), checked for loss like the rest.
            for (var p = 0; p < pairs; p++)
            {
                sentAt[$"warm-up{p}"] = Stopwatch.GetTimestamp();
                await clients[p].SendAsync(recipients[p], $"warm-up{p}");
            }
            var warm = Stopwatch.StartNew();
            while (Enumerable.Range(0, pairs).Any(p => !received.ContainsKey($"warm-up{p}")) && warm.Elapsed < TimeSpan.FromSeconds(10)) await Task.Delay(10);
            Volatile.Write(ref measuring, true);

            var started = Stopwatch.GetTimestamp();
            var count = 0;
            if (rate > 0)
            {
                var total = (int)(rate * settings.Duration.TotalSeconds);
                for (; count < total; count++)
                {
                    var due = started + (long)(count * (double)Stopwatch.Frequency / rate);
                    var wait = due - Stopwatch.GetTimestamp();
                    if (wait > Stopwatch.Frequency / 1000) await Task.Delay(TimeSpan.FromSeconds((double)wait / Stopwatch.Frequency));
                    var body = $"delivery{count}";
                    sentAt[body] = Stopwatch.GetTimestamp();
                    await clients[count % pairs].SendAsync(recipients[count % pairs], body);
                }
            }
            else
            {
                var until = started + (long)(settings.Duration.TotalSeconds * Stopwatch.Frequency);
                for (; Stopwatch.GetTimestamp() < until; count++)
                {
                    if (!await window.WaitAsync(TimeSpan.FromSeconds(10))) break;
                    var body = $"throughput{count}";
                    sentAt[body] = Stopwatch.GetTimestamp();
                    await clients[count % pairs].SendAsync(recipients[count % pairs], body);
                }
            }
            var sending = (double)(Stopwatch.GetTimestamp() - started) / Stopwatch.Frequency;
            await Scenarios.DrainAsync(sentAt, received);
            foreach (var c in clients.Concat(listeners)) await c.DisposeAsync();
            var lost = sentAt.Keys.Count(k => !received.ContainsKey(k));
            var duplicated = received.Values.Count(n => n > 1);
            var delivered = (received.Count - pairs) / sending;
            Console.WriteLine($"prosody {phase}: {sentAt.Count} sent, {lost} lost, {duplicated} duplicated, {delivered:F0}/s delivered; " +
                $"p50/p99 {histogram.GetValueAtPercentile(50) * 1000.0 / Stopwatch.Frequency:F2}/{histogram.GetValueAtPercentile(99) * 1000.0 / Stopwatch.Frequency:F2} ms");
            results.Add(new Result(rate > 0 ? $"Prosody delivery {rate}/s" : "Prosody throughput",
                rate > 0
                    ? $"Prosody {ProsodyVersion()} (XMPP, archive via mod_mam on the same MariaDB): {rate}/s for {settings.Duration.TotalSeconds:F0} s, {pairs} pairs, send → receipt"
                    : $"Prosody: {settings.Concurrency} messages in flight across {pairs} pairs, as fast as it delivers",
                histogram, [(rate > 0 ? "delivered/s" : "messages/s", $"{delivered:F0}"), ("sent", $"{sentAt.Count}"), ("lost", $"{lost}"), ("duplicated", $"{duplicated}")],
                lost + duplicated == 0 ? [] : [$"Prosody {phase}: {lost} lost, {duplicated} duplicated"])
                { Rate = delivered, TargetRate = rate, Lost = lost, Duplicated = duplicated });
        }
        return results;
    }

    static string ProsodyVersion()
    {
        try
        {
            using var dpkg = Process.Start(new ProcessStartInfo("dpkg-query", ["-W", "-f=${Version}", "prosody"]) { RedirectStandardOutput = true })!;
            return dpkg.StandardOutput.ReadToEnd().Trim();
        }
        catch (System.ComponentModel.Win32Exception) { return "?"; }
    }
}
