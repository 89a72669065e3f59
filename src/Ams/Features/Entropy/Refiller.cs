using System.Globalization;
using System.Text.Json;
using Ams.Infrastructure;
using Ams.Infrastructure.Crypto;
using StackExchange.Redis;

namespace Ams.Features.Entropy;

/// <summary>
/// Keeps the Redis pool stocked from random.org within the etiquette (one request at a time
/// cluster-wide, advisoryDelay obeyed, back-off to 00:00 UTC when a quota is spent, key errors
/// reported as configuration errors) and mixes pooled bytes into this node's state.
/// </summary>
public sealed class Refiller(RandomOrgClient client, Pool pool, EntropyMixer mixer, IConnectionMultiplexer redis,
    EntropyOptions options, RandomOrgOptions randomOrg, TimeProvider time, ILogger<Refiller> logger)
{
    public const string StatusKey = Redis.KeyPrefix + "entropy:status";
    public const string RejectedKey = Redis.KeyPrefix + "entropy:rejected-blobs";
    const string LockKey = Redis.KeyPrefix + "entropy:fetch-lock";
    const string ReleaseLock = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0";

    public static string SpentKey(DateTimeOffset now) => $"{Redis.KeyPrefix}entropy:spent:{now.UtcDateTime:yyyyMMdd}";

    public enum Outcome { NotConfigured, Waiting, PoolStocked, Paced, Busy, Refilled, Rejected, Failed }

    public async Task<Outcome> RefillOnceAsync(CancellationToken ct)
    {
        if (!client.Configured) return Outcome.NotConfigured;
        var now = time.GetUtcNow();
        var db = redis.GetDatabase();
        if (await db.HashGetAsync(StatusKey, "notBefore") is { IsNull: false } notBefore && (long)notBefore > now.ToUnixTimeMilliseconds())
            return Outcome.Waiting;
        if (await pool.BytesAsync() >= options.PoolLowWaterBytes) return Outcome.PoolStocked;
        var spent = await db.HashGetAsync(SpentKey(now), ["bits", "requests"]);
        if (!Pacing.MayFetch(now, options, (long?)spent[0] ?? 0, (long?)spent[1] ?? 0)) return Outcome.Paced;

        var token = Guid.NewGuid().ToString("N");
        if (!await db.StringSetAsync(LockKey, token, randomOrg.Timeout + TimeSpan.FromSeconds(30), When.NotExists)) return Outcome.Busy;
        try
        {
            var (blob, usage) = await client.GenerateBlobAsync(options.BlobBits, ct);
            await RecordSpendingAsync(db, now);
            var nextAsk = now + TimeSpan.FromMilliseconds(usage.AdvisoryDelayMs);
            // The quota it reports is spent: the next request would only be refused (402/403) until it resets.
            if (usage.RequestsLeft <= 0 || usage.BitsLeft < options.BlobBits) nextAsk = Pacing.NextUtcMidnight(now);
            await db.HashSetAsync(StatusKey,
            [
                new("bitsLeft", usage.BitsLeft), new("requestsLeft", usage.RequestsLeft), new("failures", 0),
                new("notBefore", nextAsk.ToUnixTimeMilliseconds()),
            ]);
            if (NoiseHealth.Check(blob) is { } failure)
            {
                await db.StringIncrementAsync(RejectedKey);
                // Genuine noise fails about once in 4,000 blobs, so one refusal means asking again; a
                // second in a row is a source stuck, backed off as a failure is (it was asked every tick).
                var inARow = await db.HashIncrementAsync(StatusKey, "rejectedInARow");
                if (inARow >= 2) nextAsk = Max(nextAsk, now + BackOff(inARow - 1));
                await db.HashSetAsync(StatusKey, [new("lastError", $"blob refused by the health tests: {failure}"), new("notBefore", nextAsk.ToUnixTimeMilliseconds())]);
                logger.LogWarning("random.org blob refused by the SP 800-90B health tests: {Failure}; next attempt after {RetryAt:u}", failure, nextAsk);
                return Outcome.Rejected;
            }
            await pool.AddAsync(blob);
            await db.HashSetAsync(StatusKey, [new("lastRefillAt", now.ToUnixTimeMilliseconds()), new("lastError", ""), new("rejectedInARow", 0)]);
            return Outcome.Refilled;
        }
        catch (RandomOrgException e) when (e.IsQuotaExhausted)
        {
            await FailAsync(db, e.Message, Pacing.NextUtcMidnight(now), LogLevel.Warning);
        }
        catch (RandomOrgException e) when (e.IsKeyProblem)
        {
            // A configuration error: say so in /api/entropy and the log (never the key), and ask rarely.
            await FailAsync(db, $"API key rejected (check RandomOrg__ApiKey): {e.Message}", now + TimeSpan.FromHours(1), LogLevel.Error);
        }
        // IOException: an answer cut short (HttpIOException) is not an HttpRequestException.
        catch (Exception e) when (e is RandomOrgException or HttpRequestException or IOException || e is OperationCanceledException && !ct.IsCancellationRequested)
        {
            var backOff = BackOff(await db.HashIncrementAsync(StatusKey, "failures"));
            var reason = e switch
            {
                RandomOrgException answered => answered.Message,   // it answered, but not with a blob
                OperationCanceledException => $"random.org unreachable: timed out after {randomOrg.Timeout.TotalSeconds:F0} s",
                _ => $"random.org unreachable: {e.Message}",
            };
            await FailAsync(db, reason, now + backOff, LogLevel.Warning);
        }
        finally
        {
            await db.ScriptEvaluateAsync(ReleaseLock, [LockKey], [token]);
        }
        return Outcome.Failed;
    }

    /// <summary>30 s after the first failure in a row, doubling to 30 minutes.</summary>
    static TimeSpan BackOff(long failures) => TimeSpan.FromSeconds(Math.Min(30 * Math.Pow(2, failures - 1), 1800));

    static DateTimeOffset Max(DateTimeOffset a, DateTimeOffset b) => a > b ? a : b;

    /// <summary>Mixes one pooled chunk into this node's state; false when the pool is empty.</summary>
    public async Task<bool> ReseedOnceAsync()
    {
        var chunk = await pool.TakeAsync();
        if (chunk is null) return false;
        mixer.Reseed(chunk);
        return true;
    }

    async Task RecordSpendingAsync(IDatabase db, DateTimeOffset now)
    {
        var key = SpentKey(now);
        await db.HashIncrementAsync(key, "bits", options.BlobBits);
        await db.HashIncrementAsync(key, "requests");
        await db.KeyExpireAsync(key, TimeSpan.FromDays(2));
    }

    async Task FailAsync(IDatabase db, string error, DateTimeOffset retryAt, LogLevel level)
    {
        await db.HashSetAsync(StatusKey, [new("lastError", error), new("notBefore", retryAt.ToUnixTimeMilliseconds())]);
        logger.Log(level, "Entropy refill failed: {Error}; next attempt after {RetryAt:u}", error, retryAt);
    }
}

/// <summary>Runs the refiller and the reseed schedule on every node.</summary>
public sealed class Service(Refiller refiller, EntropyOptions options, TimeProvider time, ILogger<Service> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!options.Background) return;
        var nextReseed = DateTimeOffset.MinValue;
        // One line when Redis stops answering the ticks and one when it answers again, as for
        // requests (Outages): a line per tick, each with the client's whole state dump, buried the rest.
        var skipped = 0;
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await refiller.RefillOnceAsync(stoppingToken);
                if (time.GetUtcNow() >= nextReseed && await refiller.ReseedOnceAsync())
                    nextReseed = time.GetUtcNow() + options.ReseedInterval;
                if (skipped > 0) logger.LogInformation("Entropy ticks go on: Redis answers again ({Skipped} skipped)", skipped);
                skipped = 0;
            }
            catch (Exception e) when (e is RedisException or TimeoutException)
            {
                if (skipped++ == 0)
                    logger.LogWarning("Entropy ticks skipped while Redis does not answer ({Error}); keys are minted from this node's own state meanwhile", e.GetType().Name);
            }
            catch (Exception e) when (!stoppingToken.IsCancellationRequested)
            {
                // Whatever went wrong, the node serves on with OS randomness: a failed background
                // service would stop the host.
                logger.LogError("Entropy tick failed: {Type}: {Message}", e.GetType().Name, e.Message);
            }
            try { await Task.Delay(options.TickInterval, time, stoppingToken); }
            catch (OperationCanceledException) { break; }
        }
    }
}
