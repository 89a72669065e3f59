using Ams.Infrastructure;

namespace Ams.Features.SecurityHistory;

/// <summary>
/// Deletes each account's security events past its newest <see cref="Endpoint.MaxLimit"/>, the
/// most the history shows: a row per sign-in grew without end, and nothing could read the rest.
/// Each event was also a structured log line (SecurityEvents), the record to keep for longer.
/// </summary>
public sealed class Sweeper(MariaDb db, TimeProvider time, ILogger<Sweeper> logger)
    : BackgroundSweep(TimeSpan.FromHours(1), "Security history sweep", time, logger)
{
    public override async Task<long> SweepAsync(CancellationToken ct = default)
    {
        await using var connection = await db.OpenConnectionAsync(ct);
        return await PerUserAsync(afterUserId => Sql.BeyondAsync(connection, afterUserId, UsersPerRound, Endpoint.MaxLimit), user => user.UserId,
            user => user.LastDropped is { } upToId
                ? DeleteInBatchesAsync(Sql.DeleteBatch, () => Sql.DeleteUpToAsync(connection, user.UserId, upToId))
                : Task.FromResult(0L));
    }
}
