using Ams.Infrastructure;
using Dapper;

namespace Ams.Features.AccessTokens;

/// <summary>Deletes the rows of expired tokens: they are refused and no longer listed, so nothing would read them again.</summary>
public sealed class Sweeper(MariaDb db, TimeProvider time, ILogger<Sweeper> logger) : BackgroundService
{
    const int Batch = 1000;
    static readonly TimeSpan Interval = TimeSpan.FromHours(1);

    protected override Task ExecuteAsync(CancellationToken stoppingToken) =>
        Periodic.RunAsync(Interval, time, logger, "Access token sweep", SweepAsync, stoppingToken);

    /// <summary>One sweep; how many tokens it deleted.</summary>
    public async Task<int> SweepAsync(CancellationToken ct = default)
    {
        await using var connection = await db.OpenConnectionAsync(ct);
        var total = 0;
        int deleted;
        do total += deleted = await connection.ExecuteAsync($"DELETE FROM access_tokens WHERE expires_at <= @now LIMIT {Batch}",
            new { now = time.UtcNowMillis() }, commandTimeout: connection.CommandTimeout());
        while (deleted == Batch);
        return total;
    }
}
