using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;
using Ams.Testing;

namespace Ams.Tests.Support;

/// <summary>One real MariaDB and one real Redis for the whole test run, on free loopback ports.</summary>
public sealed class Services : IAsyncLifetime
{
    public MariaDbServer MariaDb { get; private set; } = null!;
    public RedisServer Redis { get; private set; } = null!;
    IAlbaHost? shared;

    public async Task InitializeAsync()
    {
        var mariadb = MariaDbServer.StartAsync();
        var redis = RedisServer.StartAsync();
        MariaDb = await mariadb;
        Redis = await redis;
    }

    /// <summary>The app most tests share; tests that need their own settings start their own.</summary>
    public async Task<IAlbaHost> AppAsync() => shared ??= await StartAppAsync("ams");

    /// <summary>The master key every test node shares, as Crypto:MasterKeys.</summary>
    public static string MasterKeys { get; } = "test:" + Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32));

    /// <summary>Another app instance ("node") against the same database and Redis unless told otherwise.</summary>
    public async Task<IAlbaHost> StartAppAsync(string database = "ams", IDictionary<string, string?>? settings = null, string? redis = null,
        Action<IServiceCollection>? services = null, string environment = "Production")
    {
        await MariaDb.CreateDatabaseAsync(database);
        return await AlbaHost.For<Program>(builder =>
        {
            builder.UseSetting("environment", environment);
            builder.UseSetting("ConnectionStrings:MariaDb", MariaDb.ConnectionString(database));
            builder.UseSetting("ConnectionStrings:Redis", redis ?? Redis.ConnectionString);
            builder.UseSetting("Crypto:MasterKeys", MasterKeys);
            // Tests drive refills and reseeds themselves.
            builder.UseSetting("Entropy:Background", "false");
            foreach (var (key, value) in settings ?? new Dictionary<string, string?>())
                builder.UseSetting(key, value);
            if (services is not null) builder.ConfigureTestServices(services);
        });
    }

    public async Task DisposeAsync()
    {
        if (shared is not null) await shared.DisposeAsync();
        await Redis.DisposeAsync();
        await MariaDb.DisposeAsync();
    }
}

[CollectionDefinition(Name)]
public sealed class ServicesCollection : ICollectionFixture<Services>
{
    public const string Name = "services";
}
