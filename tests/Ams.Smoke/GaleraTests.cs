using System.Net;
using System.Net.Http.Json;
using System.Security.Cryptography;
using Ams.Testing;
using Xunit.Abstractions;

namespace Ams.Smoke;

/// <summary>A three-node Galera cluster and one Redis for the AOT nodes of one test class.</summary>
public sealed class GaleraFixture : IAsyncLifetime
{
    public GaleraCluster Galera { get; private set; } = null!;
    public RedisServer Redis { get; private set; } = null!;
    readonly string masterKeys = "app:" + Convert.ToBase64String(RandomNumberGenerator.GetBytes(32));

    public async Task InitializeAsync()
    {
        var redis = RedisServer.StartAsync();
        Galera = await GaleraCluster.StartAsync(3);
        Redis = await redis;
    }

    /// <summary>A new database, and an AOT node on it for each connection string the function gives.</summary>
    public async Task<(string Database, AppProcess[] Nodes)> NodesAsync(int count, Func<string, int, string> connection)
    {
        var database = "g_" + Guid.NewGuid().ToString("N")[..8];
        await Galera.CreateDatabaseAsync(database);
        var binary = Path.Combine(AppProcess.RepositoryRoot(), "artifacts", "publish", "Ams");
        var environment = new Dictionary<string, string> { ["Registration__MaxPerAddress"] = "10000", ["Messaging__MaxSends"] = "100000" };
        var nodes = await Task.WhenAll(Enumerable.Range(0, count).Select(i =>
            AppProcess.LaunchAsync(binary, [], connection(database, i), Redis.ConnectionString, masterKeys, environment)));
        return (database, nodes);
    }

    /// <summary>Stops the nodes; their warnings and failures go to the test's output.</summary>
    public async Task StopAsync(IEnumerable<AppProcess> nodes, ITestOutputHelper output)
    {
        foreach (var node in nodes)
        {
            var lines = node.Log.Split('\n');
            for (var l = 0; l < lines.Length; l++)
                if (lines[l].StartsWith("fail") || lines[l].StartsWith("warn"))
                    output.WriteLine(string.Join(" | ", lines[l..Math.Min(lines.Length, l + 30)].Where(x => x.Contains("Ams") || !x.StartsWith("         at"))));
            await node.DisposeAsync();
        }
    }

    /// <summary>One column of one row, from any running node.</summary>
    public async Task<long> ScalarAsync(int node, string sql) =>
        long.Parse((await Galera.RootSqlAsync(node, sql)).Split('\n')[1].Trim());

    public async Task DisposeAsync()
    {
        await Galera.DisposeAsync();
        await Redis.DisposeAsync();
    }
}

/// <summary>AMS on a real MariaDB Galera Cluster: every AMS node on its own Galera node, all writing.</summary>
[Trait("Category", "Cluster")]
public sealed class GaleraTests(GaleraFixture cluster, ITestOutputHelper output) : IClassFixture<GaleraFixture>
{
    [Fact]
    public async Task Three_nodes_starting_together_on_three_Galera_nodes_apply_each_migration_once()
    {
        var (database, nodes) = await cluster.NodesAsync(3, cluster.Galera.ConnectionString);
        try
        {
            var migrations = Directory.GetFiles(Path.Combine(AppProcess.RepositoryRoot(), "src", "Ams", "Infrastructure", "Migrations"), "*.sql").Length;
            Assert.Equal(migrations, await cluster.ScalarAsync(2, $"SELECT COUNT(DISTINCT version) FROM {database}.schema_migrations"));
            // Each applied by exactly one of the three (GET_LOCK, local to a Galera node, let two in).
            Assert.Equal(migrations, nodes.Sum(n => n.Log.Split('\n').Count(l => l.Contains("Applying schema migration"))));

            // Registered through one Galera node, signed in through another at once.
            var name = $"gm{Guid.NewGuid():N}"[..20];
            Assert.Equal(HttpStatusCode.Created, (await nodes[0].Client().PostAsJsonAsync("/api/register", new { username = name, password = SmokeUsers.Password })).StatusCode);
            Assert.Equal(HttpStatusCode.OK, (await nodes[2].Client().PostAsJsonAsync("/api/login", new { username = name, password = SmokeUsers.Password })).StatusCode);
        }
        finally
        {
            await cluster.StopAsync(nodes, output);
        }
    }
}

/// <summary>A Galera node dies under load: its own cluster, since the test leaves it one node short.</summary>
[Trait("Category", "Cluster")]
public sealed class GaleraFailoverTests(GaleraFixture cluster, ITestOutputHelper output) : IClassFixture<GaleraFixture>
{
    [Fact]
    public async Task When_the_Galera_node_in_use_dies_AMS_fails_over_and_every_acknowledged_send_is_stored_once()
    {
        // Both AMS nodes on the fail-over list, as the README recommends: both write through Galera node 1.
        var (database, nodes) = await cluster.NodesAsync(2, (db, _) => cluster.Galera.ConnectionString(db));
        try
        {
            var alice = await SmokeUsers.UserAsync(nodes[0].Client(), "fa");
            var bob = await SmokeUsers.UserAsync(nodes[1].Client(), "fb");
            var conversation = await SmokeUsers.JsonAsync(await alice.Client.PostAsJsonAsync("/api/conversations",
                new { members = new[] { bob.Name } }), HttpStatusCode.Created);
            var conversationId = conversation["id"]!.GetValue<string>();

            const int perSender = 60;
            var client = new RetryingClient();
            async Task<List<long>> SendAllAsync((string Name, HttpClient Client) user)
            {
                var ids = new List<long>();
                for (var m = 0; m < perSender; m++)
                {
                    ids.Add(await client.SendAsync(user, conversationId, m.ToString()));
                    if (m == perSender / 3 && user.Name == alice.Name) await cluster.Galera.KillAsync(0);
                }
                return ids;
            }
            var sent = await Task.WhenAll(SendAllAsync(alice), SendAllAsync(bob));
            var ids = sent.SelectMany(s => s).ToList();
            Assert.Equal(2 * perSender, ids.Distinct().Count());
            output.WriteLine($"{ids.Count} sends acknowledged; {client.Retries} answers were 503 or a dropped connection and were repeated with the same key");

            Assert.Equal(2, await cluster.Galera.ClusterSizeAsync(1));
            foreach (var g in new[] { 1, 2 })
                Assert.Equal(ids.Count, await cluster.ScalarAsync(g,
                    $"SELECT COUNT(*) FROM {database}.messages WHERE conversation_id = {conversationId} AND id IN ({string.Join(',', ids)})"));
            Assert.Equal(ids.Count, await cluster.ScalarAsync(1, $"SELECT COUNT(*) FROM {database}.messages WHERE conversation_id = {conversationId}"));
            foreach (var name in new[] { alice.Name, bob.Name })
            {
                var user = $"(SELECT id FROM {database}.users WHERE username = '{name}')";
                Assert.Equal(ids.Count, await cluster.ScalarAsync(1,
                    $"SELECT COUNT(*) FROM {database}.events WHERE user_id = {user} AND kind = 'message'"));
                Assert.Equal(await cluster.ScalarAsync(1, $"SELECT COUNT(*) FROM {database}.events WHERE user_id = {user}"),
                    await cluster.ScalarAsync(1, $"SELECT MAX(seq) FROM {database}.events WHERE user_id = {user}"));
            }

            // The dead node comes back, catches up, and holds the same messages.
            await cluster.Galera.RejoinAsync(0);
            Assert.Equal(ids.Count, await cluster.ScalarAsync(0, $"SELECT COUNT(*) FROM {database}.messages WHERE conversation_id = {conversationId}"));
        }
        finally
        {
            await cluster.StopAsync(nodes, output);
        }
    }
}

/// <summary>
/// A client that sends each message with its own Idempotency-Key and repeats it, with the same
/// key, after a 5xx or a dropped connection until it is acknowledged.
/// </summary>
sealed class RetryingClient
{
    int retries;
    public int Retries => retries;

    public async Task<long> SendAsync((string Name, HttpClient Client) user, string conversationId, string tag)
    {
        var key = $"{user.Name}-{tag}";
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                using var request = new HttpRequestMessage(HttpMethod.Post, "/api/messages")
                {
                    Content = JsonContent.Create(new { conversationId, body = $"{user.Name} {tag}" }),
                };
                request.Headers.Add("Idempotency-Key", key);
                using var response = await user.Client.SendAsync(request);
                if (response.StatusCode == HttpStatusCode.Created)
                    return long.Parse((await SmokeUsers.JsonAsync(response, HttpStatusCode.Created))["id"]!.GetValue<string>());
                // 503 from a node, 502 or 504 from the proxy for a node that died mid-request.
                Assert.Contains(response.StatusCode, new[] { HttpStatusCode.ServiceUnavailable, HttpStatusCode.BadGateway, HttpStatusCode.GatewayTimeout });
            }
            catch (HttpRequestException) { }
            Interlocked.Increment(ref retries);
            Assert.True(attempt < 200, $"send {key} never acknowledged");
            await Task.Delay(100);
        }
    }
}
