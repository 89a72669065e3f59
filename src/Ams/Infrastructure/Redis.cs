using StackExchange.Redis;

namespace Ams.Infrastructure;

public static class Redis
{
    /// <summary>Every key AMS writes starts with this, so AMS can share a Redis with other apps.</summary>
    public const string KeyPrefix = "ams:";

    public static IServiceCollection AddRedis(this IServiceCollection services, IConfiguration config)
    {
        var configuration = config.GetConnectionString("Redis");
        if (string.IsNullOrWhiteSpace(configuration))
            throw new ConfigurationException(
                "ConnectionStrings:Redis is not set. Use `just run` for a local server, or set ConnectionStrings__Redis.");
        var options = ConfigurationOptions.Parse(configuration);
        // Start even when Redis is briefly away; the multiplexer reconnects on its own and
        // /healthz reports the outage meanwhile.
        options.AbortOnConnectFail = false;
        options.ConnectTimeout = 5000;
        options.SyncTimeout = 5000;
        options.AsyncTimeout = 5000;
        // While disconnected, fail at once rather than queue: every caller has a fallback (the
        // session cache, the event table's replay, an open send throttle) or answers 503.
        options.BacklogPolicy = BacklogPolicy.FailFast;
        services.AddSingleton<IConnectionMultiplexer>(_ => ConnectionMultiplexer.Connect(options));
        return services;
    }
}
