using Ams.Infrastructure;
using MySqlConnector;

namespace Ams.Features.SendMessage;

/// <summary>Deletes idempotency keys past their 24 hours (FindAsync already ignores them; this keeps the table small).</summary>
public sealed class KeySweeper(MariaDb db, TimeProvider time, ILogger<KeySweeper> logger)
    : BackgroundSweep(TimeSpan.FromHours(1), "Idempotency key sweep", time, logger)
{
    /// <summary>One sweep; how many keys it deleted.</summary>
    public override async Task<long> SweepAsync(CancellationToken ct = default)
    {
        await using var connection = await db.OpenConnectionAsync(ct);
        var now = Time.UtcNowMillis();
        return await DeleteInBatchesAsync(IdempotencyKeys.SweepBatch, () => IdempotencyKeys.SweepAsync(connection, now));
    }
}
