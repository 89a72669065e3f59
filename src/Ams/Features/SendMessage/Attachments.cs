using Ams.Infrastructure;
using Ams.Infrastructure.Crypto;
using Ams.Infrastructure.Files;
using Dapper;
using MySqlConnector;

namespace Ams.Features.SendMessage;

/// <summary>
/// A send's attachments: claimed for it before it is queued (message_id 0: no other send can take
/// them), linked to the message in the send's own transaction, released if the send fails.
/// </summary>
static class Attachments
{
    /// <summary>
    /// The views of the claimed attachments in request order, or null (nothing claimed) unless all
    /// are the sender's unsent uploads and readable: a claimed upload the message could not show
    /// would be sent silently without it.
    /// </summary>
    public static async Task<IReadOnlyList<AttachmentView>?> ClaimAsync(MySqlConnection connection, Envelope envelope, long senderId, long[] ids, DateTime now)
    {
        if (ids.Any(id => id <= 0)) return null;
        await using var transaction = await Transaction.BeginAsync(connection);
        var rows = (await connection.QueryAsync<AttachmentRow>($"""
            SELECT {AttachmentRow.Columns} FROM {SqlLists.IdsTable} STRAIGHT_JOIN attachments a ON a.id = ids.id
            WHERE a.uploader_id = @senderId AND a.message_id IS NULL AND a.state = 'ready'
            FOR UPDATE
            """, new { ids = SqlLists.Ids(ids), senderId }, commandTimeout: connection.CommandTimeout())).ToDictionary(r => r.Id);
        var views = new List<AttachmentView>(ids.Length);
        foreach (var id in ids)
            if (rows.GetValueOrDefault(id) is { } row && await row.ToViewAsync(envelope) is { } view) views.Add(view);
        if (views.Count != ids.Length)
        {
            await transaction.RollbackAsync();
            return null;
        }
        await connection.ExecuteAsync($"UPDATE {SqlLists.IdsTable} STRAIGHT_JOIN attachments a ON a.id = ids.id SET a.message_id = 0, a.claimed_at = @now",
            new { ids = SqlLists.Ids(ids), now }, commandTimeout: connection.CommandTimeout());
        await transaction.CommitAsync();
        return views;
    }

    /// <summary>Whether a send still being stored holds one of these uploads of the sender (claimed, not yet linked).</summary>
    public static async Task<bool> AnyBeingSentAsync(MySqlConnection connection, long senderId, long[] ids) =>
        ids.All(id => id > 0) && await connection.ExecuteScalarAsync<long>($"""
            SELECT COUNT(*) FROM {SqlLists.IdsTable} STRAIGHT_JOIN attachments a ON a.id = ids.id
            WHERE a.uploader_id = @senderId AND a.message_id = 0
            """, new { ids = SqlLists.Ids(ids), senderId }, commandTimeout: connection.CommandTimeout()) > 0;

    /// <summary>Gives claimed attachments back to their uploader after a send that stored nothing.</summary>
    public static async Task ReleaseAsync(MariaDb db, long[] ids)
    {
        if (ids.Length == 0) return;
        await using var connection = await db.OpenConnectionAsync();
        // Only a claim: a send that was stored after all (its outcome unknown to the sender) has linked them.
        await connection.ExecuteAsync($"UPDATE {SqlLists.IdsTable} STRAIGHT_JOIN attachments a ON a.id = ids.id SET a.message_id = NULL, a.claimed_at = NULL WHERE a.message_id = 0",
            new { ids = SqlLists.Ids(ids) }, commandTimeout: connection.CommandTimeout());
    }

    /// <summary>
    /// After a send that failed. A send refused because MariaDB is not answering must answer 503 at
    /// once, not after a release that waits for the same MariaDB (15 s to open a connection) and then
    /// fails, leaving the uploads claimed by a send that will never be stored, unusable until the
    /// sweeper deletes them. So then, or when the release fails, it is tried again in the background
    /// until MariaDB answers.
    /// </summary>
    public static async Task ReleaseAfterFailureAsync(MariaDb db, MariaDbCircuit circuit, long[] ids, Exception failure, ILogger logger)
    {
        if (ids.Length == 0) return;
        if (failure is not MariaDbNotAnsweringException && !circuit.IsOpen)
            try
            {
                await ReleaseAsync(db, ids);
                return;
            }
            catch (Exception e) when (e is MySqlException or MariaDbNotAnsweringException or TimeoutException or InvalidOperationException)
            {
            }
        _ = Task.Run(() => ReleaseLaterAsync(db, circuit, ids, logger));
    }

    static readonly TimeSpan RetryInterval = TimeSpan.FromSeconds(1), GiveUpAfter = TimeSpan.FromMinutes(10);

    static async Task ReleaseLaterAsync(MariaDb db, MariaDbCircuit circuit, long[] ids, ILogger logger)
    {
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        while (System.Diagnostics.Stopwatch.GetElapsedTime(started) < GiveUpAfter)
        {
            await Task.Delay(RetryInterval);
            if (circuit.IsOpen) continue;
            try
            {
                await ReleaseAsync(db, ids);
                return;
            }
            catch (Exception e) when (e is MySqlException or TimeoutException or InvalidOperationException)
            {
            }
        }
        logger.LogWarning("The uploads {Ids} claimed by a send that failed stay claimed: MariaDB did not take them back for {Minutes} minutes; they are deleted with the unsent uploads",
            string.Join(",", ids), GiveUpAfter.TotalMinutes);
    }
}
