using MySqlConnector;

namespace Ams.Infrastructure.Files;

/// <summary>
/// Where sealed attachment chunks live. Only ciphertext ever reaches a store. The default is
/// MariaDB itself (<see cref="MariaDbChunkStore"/>); an S3-compatible object store would
/// implement the same four calls (one object per chunk, keyed by attachment id and index).
/// </summary>
public interface IChunkStore
{
    /// <summary>Stores one sealed chunk (each index once).</summary>
    Task WriteAsync(long attachmentId, long index, ArraySegment<byte> sealedChunk, CancellationToken ct);

    /// <summary>
    /// Reads one sealed chunk into <paramref name="buffer"/>; its length, or -1 when the chunk is
    /// missing or larger than the buffer.
    /// </summary>
    Task<int> ReadAsync(long attachmentId, long index, byte[] buffer, CancellationToken ct);

    /// <summary>Removes every chunk of the attachments.</summary>
    Task DeleteAsync(IReadOnlyCollection<long> attachmentIds, CancellationToken ct = default);

    /// <summary>Attachments that have chunks here but no <c>attachments</c> row (left by a failure between the two deletes).</summary>
    Task<IReadOnlyList<long>> OrphansAsync(int limit, CancellationToken ct = default);
}

/// <summary>
/// Chunks as rows of <c>attachment_chunks</c>: nothing extra to run, every node sees every file,
/// one backup holds everything. A chunk is one row of at most 256 KiB + 16, well under MariaDB's
/// default 16 MiB <c>max_allowed_packet</c>.
/// </summary>
public sealed class MariaDbChunkStore(MariaDb db) : IChunkStore
{
    public async Task WriteAsync(long attachmentId, long index, ArraySegment<byte> sealedChunk, CancellationToken ct)
    {
        await using var connection = await db.OpenConnectionAsync(ct);
        await using var insert = new MySqlCommand("INSERT INTO attachment_chunks (attachment_id, idx, data) VALUES (@a, @i, @d)", connection);
        insert.Parameters.AddWithValue("@a", attachmentId);
        insert.Parameters.AddWithValue("@i", index);
        insert.Parameters.AddWithValue("@d", sealedChunk);
        await insert.ExecuteNonQueryAsync(ct);
    }

    public async Task<int> ReadAsync(long attachmentId, long index, byte[] buffer, CancellationToken ct)
    {
        await using var connection = await db.OpenConnectionAsync(ct);
        await using var select = new MySqlCommand("SELECT data FROM attachment_chunks WHERE attachment_id = @a AND idx = @i", connection);
        select.Parameters.AddWithValue("@a", attachmentId);
        select.Parameters.AddWithValue("@i", index);
        await using var reader = await select.ExecuteReaderAsync(System.Data.CommandBehavior.SequentialAccess, ct);
        if (!await reader.ReadAsync(ct)) return -1;
        var length = reader.GetBytes(0, 0, null, 0, 0);
        if (length > buffer.Length) return -1;
        return (int)reader.GetBytes(0, 0, buffer, 0, (int)length);
    }

    public async Task DeleteAsync(IReadOnlyCollection<long> attachmentIds, CancellationToken ct = default)
    {
        if (attachmentIds.Count == 0) return;
        await using var connection = await db.OpenConnectionAsync(ct);
        await using var delete = new MySqlCommand(
            $"DELETE c FROM {SqlLists.IdsTable} STRAIGHT_JOIN attachment_chunks c ON c.attachment_id = ids.id", connection);
        delete.Parameters.AddWithValue("@ids", SqlLists.Ids(attachmentIds));
        await delete.ExecuteNonQueryAsync(ct);
    }

    public async Task<IReadOnlyList<long>> OrphansAsync(int limit, CancellationToken ct = default)
    {
        await using var connection = await db.OpenConnectionAsync(ct);
        await using var select = new MySqlCommand("""
            SELECT DISTINCT c.attachment_id FROM attachment_chunks c
            WHERE NOT EXISTS (SELECT 1 FROM attachments a WHERE a.id = c.attachment_id) LIMIT @limit
            """, connection);
        select.Parameters.AddWithValue("@limit", limit);
        await using var reader = await select.ExecuteReaderAsync(ct);
        var ids = new List<long>();
        while (await reader.ReadAsync(ct)) ids.Add(reader.GetInt64(0));
        return ids;
    }
}
