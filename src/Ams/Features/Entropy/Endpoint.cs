using Ams.Infrastructure;
using Ams.Infrastructure.Crypto;
using FastEndpoints;
using StackExchange.Redis;

namespace Ams.Features.Entropy;

/// <param name="NextRequestAt">
/// The earliest the cluster asks random.org for more noise: after the advisory delay of its last
/// answer, a back-off or a spent quota (see LastError), and within the day's budget spread over
/// the day (then <paramref name="Paced"/>). Null while the pool holds enough (it asks only below
/// Entropy__PoolLowWaterBytes), with no key, and (paced) when the daily budget is under one request.
/// </param>
public sealed record RandomOrgStatus(bool Configured, long? BitsLeft, long? RequestsLeft, string? LastError, DateTime? NextRequestAt, bool Paced);
public sealed record KeysMinted(long WithAtmospheric, long OsOnly);
public sealed record Response([property: ApiValues(typeof(EntropyModes), nameof(EntropyModes.All))] string Mode, string Mixing, long PoolBytes, DateTime? LastRefillAt, RandomOrgStatus RandomOrg, KeysMinted KeysMinted);

/// <summary>Whether atmospheric noise is flowing: this node's mixer, and the cluster's pool and quota.</summary>
public sealed class Endpoint(EntropyMixer mixer, RandomOrgClient client, RedisCircuit redis, EntropyOptions options, TimeProvider time) : EndpointWithoutRequest<Response>
{
    public override void Configure()
    {
        Get("/api/entropy");
        ApiDocs.Document(Definition, "Where this node's randomness comes from, and random.org's quota", b => b.Produces<Response>(StatusCodes.Status200OK));
    }

    public override async Task HandleAsync(CancellationToken ct) => await Send.OkAsync(await ReadAsync(mixer, client, redis, options, time), ct);

    internal static async Task<Response> ReadAsync(EntropyMixer mixer, RandomOrgClient client, RedisCircuit redis, EntropyOptions options, TimeProvider time)
    {
        var now = time.GetUtcNow();
        var (status, pool, counts, spent) = await redis.CallAsync(async db =>
        {
            var batch = db.CreateBatch();
            var status = batch.HashGetAllAsync(Refiller.StatusKey);
            var pool = batch.ListLengthAsync(Infrastructure.Redis.KeyPrefix + "entropy:pool");
            var minted = batch.StringGetAsync([MintedKeys.AtmosphericKey, MintedKeys.OsKey]);
            var spent = batch.HashGetAsync(Refiller.SpentKey(now), ["bits", "requests"]);
            batch.Execute();
            return (await status, await pool, await minted, await spent);
        });
        var fields = status.ToDictionary(e => e.Name.ToString(), e => e.Value);
        long? Number(string name) => fields.TryGetValue(name, out var v) && long.TryParse(v.ToString(), out var n) ? n : null;
        string? lastError = client.Configured
            ? fields.TryGetValue("lastError", out var e) && !e.IsNullOrEmpty ? e.ToString() : null
            : "no API key configured (RandomOrg__ApiKey): running on OS randomness only";
        // The refiller's own order of checks (Refiller.RefillOnceAsync), read as a time.
        DateTimeOffset? nextRequestAt = null;
        var paced = false;
        if (client.Configured && pool * Pool.ChunkBytes < options.PoolLowWaterBytes)
        {
            var notBefore = Number("notBefore") is { } ms ? DateTimeOffset.FromUnixTimeMilliseconds(ms) : now;
            var allowed = Pacing.EarliestFetch(now, options, (long?)spent[0] ?? 0, (long?)spent[1] ?? 0);
            paced = allowed is null || allowed > now && allowed >= notBefore;
            nextRequestAt = allowed is { } earliest ? new[] { now, notBefore, earliest }.Max() : null;
        }
        return new Response(
            mixer.Mode,
            EntropyMixer.Description,
            pool * Pool.ChunkBytes,
            Number("lastRefillAt") is { } at ? DateTimeOffset.FromUnixTimeMilliseconds(at).UtcDateTime : null,
            new RandomOrgStatus(client.Configured, Number("bitsLeft"), Number("requestsLeft"), lastError, nextRequestAt?.UtcDateTime, paced),
            new KeysMinted((long?)counts[0] ?? 0, (long?)counts[1] ?? 0));
    }
}

/// <summary>
/// The chat's small status panel, for every user: whether the keys of their new messages carry
/// atmospheric noise. How the server is configured (keys, pool, quota) is for operators
/// (<c>/api/entropy</c>, logs, metrics), not for this panel, which every chat page loads: it reads
/// the node's own mixer and asks Redis nothing.
/// </summary>
public sealed class Panel(EntropyMixer mixer) : EndpointWithoutRequest
{
    public override void Configure()
    {
        Get("/entropy/panel");
    }

    public override async Task HandleAsync(CancellationToken ct)
    {
        var flowing = mixer.Mode == EntropyModes.Atmospheric;
        var html = Infrastructure.Html.Of($"""
            <section class="entropy" aria-live="polite">
              <h2>Encryption keys</h2>
              <p class="{(flowing ? "ok" : "muted")}">{(flowing
                  ? "Your new messages' keys carry atmospheric noise (random.org), mixed with this server's own randomness."
                  : "Your new messages' keys use this server's own randomness; atmospheric noise is not flowing right now.")}</p>
            </section>
            """);
        await Send.StringAsync(html.Value, 200, "text/html; charset=utf-8", ct);
    }
}
