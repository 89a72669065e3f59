using Ams.Infrastructure;
using Ams.Infrastructure.Crypto;
using Ams.Infrastructure.Files;
using MySqlConnector;

namespace Ams.Features.Attachments;

/// <summary>
/// Removes uploads never sent within <see cref="AttachmentOptions.UnsentLifetime"/> of their
/// upload (and uploads interrupted over an hour ago): their keys first, then their rows, then their
/// chunks; and chunks whose attachment is already gone (a delete interrupted between the two steps).
/// An upload a send has claimed is left alone for an hour, longer than any send is stored or given
/// up on (<see cref="SendMessage.Attachments"/> releases a failed send's claim for ten minutes).
/// </summary>
public sealed class Sweeper(MariaDb db, Envelope envelope, IChunkStore store, AttachmentOptions options,
    TimeProvider time, ILogger<Sweeper> logger) : BackgroundSweep(options.SweepInterval, "Attachment sweep", time, logger)
{
    const int Batch = 500;
    public static readonly TimeSpan InterruptedAfter = TimeSpan.FromHours(1);
    static readonly TimeSpan ClaimHeldFor = TimeSpan.FromHours(1);

    /// <summary>One sweep; how many attachments it removed.</summary>
    public override async Task<long> SweepAsync(CancellationToken ct = default)
    {
        var now = Time.GetUtcNow().UtcDateTime;
        var expiry = new Sql.Expiry(now - options.UnsentLifetime, now - ClaimHeldFor, now - InterruptedAfter);
        var removed = 0;
        while (true)
        {
            List<long> candidates, expired;
            await using (var connection = await db.OpenConnectionAsync(ct))
            {
                candidates = await Sql.ExpiredAsync(connection, expiry, Batch);
                if (candidates.Count == 0) break;
                await using var transaction = await Transaction.BeginAsync(connection, ct);
                expired = await Sql.LockExpiredAsync(connection, expiry, candidates);
                var keys = await AttachmentQueries.DestroyAsync(connection, expired);
                await transaction.CommitAsync(ct);
                envelope.Forget(keys);
            }
            await store.DeleteAsync(expired, ct);
            removed += expired.Count;
            if (candidates.Count < Batch) break;
        }
        var orphans = await store.OrphansAsync(Batch, ct);
        await store.DeleteAsync([.. orphans], ct);
        // Chunks without their attachment are what a delete interrupted between its two steps left.
        if (orphans.Count > 0) Logger.LogInformation("Attachment sweep: {Orphans} orphaned chunk sets removed", orphans.Count);
        return removed;
    }
}
