using Ams.Infrastructure;
using MySqlConnector;

namespace Ams.Features.SendMessage;

/// <summary>Deletes idempotency keys past their 24 hours (FindAsync already ignores them; this keeps the table small).</summary>
public sealed class KeySweeper(MariaDb db, TimeProvider time, ILogger<KeySweeper> logger) : BackgroundService
{
    static readonly TimeSpan Interval = TimeSpan.FromHours(1);

    protected override Task ExecuteAsync(CancellationToken stoppingToken) =>
        Periodic.RunAsync(Interval, time, logger, "Idempotency key sweep", SweepAsync, stoppingToken);

    /// <summary>One sweep; how many keys it deleted.</summary>
    public async Task<int> SweepAsync(CancellationToken ct = default)
    {
        await using var connection = await db.OpenConnectionAsync(ct);
        var total = 0;
        int deleted;
        do total += deleted = await IdempotencyKeys.SweepAsync(connection, time.UtcNowMillis());
        while (deleted == IdempotencyKeys.SweepBatch);
        return total;
    }
}
