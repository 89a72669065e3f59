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
    const int UsersPerRound = 500;

    public override async Task<long> SweepAsync(CancellationToken ct = default)
    {
        long deleted = 0, afterUserId = 0;
        await using var connection = await db.OpenConnectionAsync(ct);
        while (true)
        {
            var users = await Sql.BeyondAsync(connection, afterUserId, UsersPerRound, Endpoint.MaxLimit);
            foreach (var user in users)
                if (user.LastDropped is { } upToId)
                    deleted += await DeleteInBatchesAsync(Sql.DeleteBatch, () => Sql.DeleteUpToAsync(connection, user.UserId, upToId));
            if (users.Count < UsersPerRound) return deleted;
            afterUserId = users[^1].UserId;
        }
    }
}
