using Ams.Infrastructure;

namespace Ams.Features.Events;

/// <summary>
/// Deletes the stored events no stream may replay any more: a user's events beyond their latest
/// <see cref="StreamOptions.MaxReplay"/>, and those older than <see cref="StreamOptions.MaxReplayAge"/>.
/// What a user keeps stays one unbroken run that ends with their latest event, so a stream whose
/// next event is gone sees it at the start of its replay and gets <c>event: reset</c>, whatever its
/// own node's settings (<see cref="Stream"/>): a node with a larger MaxReplay than the one that swept
/// would otherwise replay across the hole without a word. On Galera, every node sweeps: a delete
/// that loses its certification to another node's is run again by the server itself (its
/// autocommit retry), and one that loses twice ends the sweep with a warning until the next.
/// </summary>
public sealed class Sweeper(MariaDb db, StreamOptions options, TimeProvider time, ILogger<Sweeper> logger)
    : BackgroundSweep(options.SweepInterval, "Event sweep", time, logger)
{
    public override async Task<long> SweepAsync(CancellationToken ct = default)
    {
        var cutoff = Time.UtcNowMillis() - options.MaxReplayAge;
        await using var connection = await db.OpenConnectionAsync(ct);
        var deleted = await PerUserAsync(afterUserId => Sql.KeptAsync(connection, afterUserId, UsersPerRound), user => user.UserId, async user =>
        {
            if (user.Oldest is not { } oldest) return 0;
            var upTo = user.Latest - options.MaxReplay;
            // The latest event always stays (NewestBeforeAsync looks below it): the sweep's locks
            // then never reach the gap where the user's next event goes in, so no send waits for it.
            if (user.OldestAt < cutoff) upTo = Math.Max(upTo, await Sql.NewestBeforeAsync(connection, user.UserId, cutoff, user.Latest));
            if (upTo < oldest) return 0;
            return await DeleteInBatchesAsync(Sql.DeleteBatch, () => Sql.DeleteUpToAsync(connection, user.UserId, upTo));
        });
        return deleted;
    }
}
