using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Ams.Testing;

namespace Ams.Tests.Support;

/// <summary>
/// A test class's own database on the run's one MariaDB server, and its own redis-server
/// (a class fixture: <c>IClassFixture&lt;Services&gt;</c>). Classes do not share a Redis because
/// the app's keys and pub/sub channels are fixed names: two databases' nodes on one Redis would
/// see each other's sessions and live events. With nothing shared but the MariaDB server, each
/// class is its own xunit collection and up to four run at once (xunit.runner.json). A class whose
/// timing the others' load would disturb belongs in a collection with DisableParallelization.
/// </summary>
public sealed class Services : IAsyncLifetime
{
    static readonly Lazy<Task<MariaDbServer>> server = new(StartServerAsync);
    static int databases;

    public MariaDbServer MariaDb { get; private set; } = null!;
    public RedisServer Redis { get; private set; } = null!;

    /// <summary>This class's database, the default for <see cref="StartAppAsync"/>.</summary>
    public string Database { get; } = $"ams{Interlocked.Increment(ref databases)}";

    IAlbaHost? shared;

    public async Task InitializeAsync()
    {
        var redis = RedisServer.StartAsync();
        MariaDb = await server.Value;
        Redis = await redis;
        await MariaDb.CreateDatabaseAsync(Database);
    }

    static async Task<MariaDbServer> StartServerAsync()
    {
        var mariadb = await MariaDbServer.StartAsync();
        // A clean stop at the end of the run; ServerProcess also stops it if the test host dies.
        AppDomain.CurrentDomain.ProcessExit += (_, _) => mariadb.DisposeAsync().AsTask().GetAwaiter().GetResult();
        return mariadb;
    }

    /// <summary>The app most tests of a class share; tests that need their own settings start their own.</summary>
    public async Task<IAlbaHost> AppAsync() => shared ??= await StartAppAsync();

    /// <summary>The master key every test node shares, as Crypto:MasterKeys.</summary>
    public static string MasterKeys { get; } = "test:" + Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32));

    /// <summary>
    /// The Argon2id cost of test nodes: libsodium's minimum instead of the production 19 MiB, t = 2,
    /// which would cost every register and login ~20 ms of CPU. Pass <see cref="ProductionPasswords"/>
    /// in <c>settings</c> for a node with the production cost.
    /// </summary>
    public static IReadOnlyDictionary<string, string?> CheapPasswords { get; } = new Dictionary<string, string?>
    {
        ["Passwords:MemoryKiB"] = Ams.Infrastructure.Passwords.MinMemoryKiB.ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["Passwords:Iterations"] = Ams.Infrastructure.Passwords.MinIterations.ToString(System.Globalization.CultureInfo.InvariantCulture),
    };

    /// <summary>
    /// Every test host's requests come from a handful of addresses, and a class registers far more
    /// accounts than a real address would: the per-address registration limit is raised for them.
    /// Tests of that limit pass their own setting.
    /// </summary>
    public static IReadOnlyDictionary<string, string?> RoomyLimits { get; } = new Dictionary<string, string?>
    {
        ["Registration:MaxPerAddress"] = "1000000",
        ["Conversations:MaxCreates"] = "1000000",
        ["Conversations:MaxMemberAdds"] = "1000000",
        ["Conversations:MaxReads"] = "1000000",
    };

    /// <summary>Unsets the test cost, so the node runs as a host without any Passwords:* setting.</summary>
    public static IReadOnlyDictionary<string, string?> ProductionPasswords { get; } =
        CheapPasswords.ToDictionary(setting => setting.Key, _ => (string?)null);

    /// <summary>Another app instance ("node") against this class's database and Redis unless told otherwise.</summary>
    public async Task<IAlbaHost> StartAppAsync(string? database = null, IEnumerable<KeyValuePair<string, string?>>? settings = null, string? redis = null,
        Action<IServiceCollection>? services = null, string environment = "Production")
    {
        database ??= Database;
        await MariaDb.CreateDatabaseAsync(database);
        // Alba starts the host synchronously. Run with DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS=1,
        // this method may be on a socket event thread after the await above, and blocking it can
        // hold up the Redis connect the start waits for: the start runs on the thread pool.
        await Task.Yield();
        return await AlbaHost.For<Program>(builder =>
        {
            builder.UseSetting("environment", environment);
            builder.UseSetting("ConnectionStrings:MariaDb", MariaDb.ConnectionString(database));
            builder.UseSetting("ConnectionStrings:Redis", redis ?? Redis.ConnectionString);
            builder.UseSetting("Crypto:MasterKeys", MasterKeys);
            // Tests drive refills and reseeds themselves.
            builder.UseSetting("Entropy:Background", "false");
            foreach (var (key, value) in CheapPasswords)
                builder.UseSetting(key, value);
            foreach (var (key, value) in RoomyLimits)
                builder.UseSetting(key, value);
            foreach (var (key, value) in settings ?? [])
                builder.UseSetting(key, value);
            builder.ConfigureTestServices(s => s.AddSingleton<ILoggerProvider>(WarningsFile.Shared));
            if (services is not null) builder.ConfigureTestServices(services);
        });
    }

    /// <summary>Runs SQL as root with this class's database as the default one.</summary>
    public Task<string> SqlAsync(string sql) => MariaDb.ExecuteAsRootAsync($"USE `{Database}`; {sql}");

    /// <summary>The last value <paramref name="sql"/> prints ("" when it prints no row).</summary>
    public async Task<string> ScalarAsync(string sql)
    {
        var lines = (await SqlAsync(sql)).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        return lines.Length < 2 ? "" : lines[^1].Trim();
    }

    /// <summary>A registered user's id, as the database has it.</summary>
    public async Task<long> UserIdAsync(string username) =>
        long.Parse(await ScalarAsync($"SELECT id FROM users WHERE username = '{username}'"), System.Globalization.CultureInfo.InvariantCulture);

    public async Task DisposeAsync()
    {
        if (shared is not null) await shared.DisposeAsync();
        await Redis.DisposeAsync();
    }
}
