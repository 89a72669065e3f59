using Ams.Infrastructure.Crypto;
using FastEndpoints;
using StackExchange.Redis;

namespace Ams.Features.Entropy;

public sealed record RandomOrgStatus(bool Configured, long? BitsLeft, long? RequestsLeft, string? LastError);
public sealed record KeysMinted(long WithAtmospheric, long OsOnly);
public sealed record Response(string Mode, string Mixing, long PoolBytes, DateTime? LastRefillAt, RandomOrgStatus RandomOrg, KeysMinted KeysMinted);

/// <summary>Whether atmospheric noise is flowing: this node's mixer, and the cluster's pool and quota.</summary>
public sealed class Endpoint(EntropyMixer mixer, RandomOrgClient client, IConnectionMultiplexer redis) : EndpointWithoutRequest<Response>
{
    public override void Configure()
    {
        Get("/api/entropy");
    }

    public override async Task HandleAsync(CancellationToken ct)
    {
        var batch = redis.GetDatabase().CreateBatch();
        var status = batch.HashGetAllAsync(Refiller.StatusKey);
        var pool = batch.ListLengthAsync(Infrastructure.Redis.KeyPrefix + "entropy:pool");
        var minted = batch.StringGetAsync([Envelope.MintedAtmosphericKey, Envelope.MintedOsKey]);
        batch.Execute();
        var fields = (await status).ToDictionary(e => e.Name.ToString(), e => e.Value);
        var counts = await minted;
        long? Number(string name) => fields.TryGetValue(name, out var v) && long.TryParse(v.ToString(), out var n) ? n : null;
        string? lastError = client.Configured
            ? fields.TryGetValue("lastError", out var e) && !e.IsNullOrEmpty ? e.ToString() : null
            : "no API key configured (RandomOrg__ApiKey): running on OS randomness only";
        await Send.OkAsync(new Response(
            mixer.Mode,
            EntropyMixer.Description,
            await pool * Pool.ChunkBytes,
            Number("lastRefillAt") is { } at ? DateTimeOffset.FromUnixTimeMilliseconds(at).UtcDateTime : null,
            new RandomOrgStatus(client.Configured, Number("bitsLeft"), Number("requestsLeft"), lastError),
            new KeysMinted((long?)counts[0] ?? 0, (long?)counts[1] ?? 0)), ct);
    }
}
