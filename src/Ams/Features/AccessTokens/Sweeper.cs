using Ams.Infrastructure;
using Dapper;

namespace Ams.Features.AccessTokens;

/// <summary>Deletes the rows of expired tokens: they are refused and no longer listed, so nothing would read them again.</summary>
public sealed class Sweeper(MariaDb db, TimeProvider time, ILogger<Sweeper> logger)
    : BackgroundSweep(TimeSpan.FromHours(1), "Access token sweep", time, logger)
{
    const int Batch = 1000;

    public override async Task<long> SweepAsync(CancellationToken ct = default)
    {
        await using var connection = await db.OpenConnectionAsync(ct);
        var now = Time.UtcNowMillis();
        return await DeleteInBatchesAsync(Batch, () => connection.ExecuteAsync($"DELETE FROM access_tokens WHERE expires_at <= @now LIMIT {Batch}",
            new { now }, commandTimeout: connection.CommandTimeout()));
    }
}
