using System.Diagnostics.Metrics;
using Ams.Infrastructure;
using Ams.Infrastructure.Crypto;
using StackExchange.Redis;

namespace Ams.Features.Entropy;

/// <summary>
/// The entropy service at <c>/metrics</c>: this node's mode, the cluster's pool, and the random.org
/// quota as the last refill saw it. Read when scraped; a Redis that does not answer reports nothing.
/// </summary>
public sealed class EntropyMetrics(IMeterFactory meters, EntropyMixer mixer, RandomOrgClient client, RedisCircuit redis) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken)
    {
        var meter = meters.Create(AmsMetrics.MeterName);
        meter.CreateObservableGauge("ams.entropy.mode", () => new Measurement<int>(1, new KeyValuePair<string, object?>("mode", mixer.Mode)),
            "{mode}", "1 for the mode this node mints keys in (random.org+os or os).");
        meter.CreateObservableGauge("ams.entropy.pool.size", () => Read(async db => await db.ListLengthAsync(Redis.KeyPrefix + "entropy:pool") * Pool.ChunkBytes),
            "By", "Atmospheric noise pooled in Redis for the cluster.");
        meter.CreateObservableGauge("ams.randomorg.bits.left", () => client.Configured ? Read(db => Field(db, "bitsLeft")) : [],
            "{bit}", "random.org bits left today, as the last refill saw it.");
        meter.CreateObservableGauge("ams.randomorg.requests.left", () => client.Configured ? Read(db => Field(db, "requestsLeft")) : [],
            "{request}", "random.org requests left today, as the last refill saw it.");
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    static async Task<long?> Field(IDatabase db, string name) =>
        await db.HashGetAsync(Refiller.StatusKey, name) is { IsNull: false } v && long.TryParse(v.ToString(), out var n) ? n : null;

    // The exporter reads gauges synchronously: a read waits at most the circuit's budget, so a
    // hung Redis costs a scrape a second, not the client's timeout per gauge.
    IEnumerable<Measurement<long>> Read(Func<IDatabase, Task<long?>> read)
    {
        try
        {
            return redis.CallAsync(read).GetAwaiter().GetResult() is { } value ? [new Measurement<long>(value)] : [];
        }
        catch (Exception e) when (e is RedisException or TimeoutException)
        {
            return [];
        }
    }
}
