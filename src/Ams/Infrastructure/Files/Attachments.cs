using System.Security.Cryptography;
using Ams.Infrastructure.Crypto;
using Ams.Infrastructure.Messaging;
using Dapper;
using MySqlConnector;

namespace Ams.Infrastructure.Files;

/// <summary>api.md's <c>attachment</c>.</summary>
public sealed record AttachmentView(string Id, string Name, long Size, string ContentType, string Sha256);

/// <summary>An <c>attachments</c> row: the file's size, its key and nonce prefix, and its sealed metadata.</summary>
public sealed class AttachmentRow
{
    public const string Columns = """
        a.id AS Id, a.uploader_id AS UploaderId, a.message_id AS MessageId, a.size AS Size, a.chunk_size AS ChunkSize,
        a.key_id AS KeyId, a.nonce_prefix AS NoncePrefix, a.meta AS Meta
        """;

    public long Id { get; set; }
    public long UploaderId { get; set; }
    public long? MessageId { get; set; }
    public long Size { get; set; }
    public int ChunkSize { get; set; }
    public byte[] KeyId { get; set; } = [];
    public byte[] NoncePrefix { get; set; } = [];
    public byte[] Meta { get; set; } = [];

    /// <summary>The API view, or null when the key is gone or the metadata does not authenticate.</summary>
    public async Task<AttachmentView?> ToViewAsync(Envelope envelope)
    {
        if (await envelope.KeyAsync(KeyId) is not { } key) return null;
        using var aes = new AesGcm(key, ChunkCipher.TagSize);
        return ChunkCipher.OpenMeta(aes, NoncePrefix, Id, KeyId, Meta) is { } meta
            ? new AttachmentView(Ids.Of(Id), meta.Name, Size, meta.ContentType, meta.Sha256)
            : null;
    }
}

public static class AttachmentQueries
{
    /// <summary>The attachments of each message, in the order they were sent.</summary>
    public static async Task<Dictionary<long, List<AttachmentView>>> ForMessagesAsync(MySqlConnection connection, Envelope envelope, IEnumerable<long> messageIds)
    {
        var result = new Dictionary<long, List<AttachmentView>>();
        var ids = messageIds.Distinct().ToList();
        if (ids.Count == 0) return result;
        var rows = (await connection.QueryAsync<AttachmentRow>($"""
            SELECT {AttachmentRow.Columns} FROM {SqlLists.IdsTable} STRAIGHT_JOIN attachments a ON a.message_id = ids.id
            ORDER BY a.message_id, a.position
            """, new { ids = SqlLists.Ids(ids) }, commandTimeout: connection.CommandTimeout())).ToList();
        await envelope.LoadKeysAsync(connection, rows.Select(r => r.KeyId));
        foreach (var row in rows)
        {
            if (await row.ToViewAsync(envelope) is not { } view) continue;
            if (!result.TryGetValue(row.MessageId!.Value, out var list)) result[row.MessageId.Value] = list = [];
            list.Add(view);
        }
        return result;
    }

    /// <summary>
    /// Crypto-shreds attachments: deletes their data keys (no backup can decrypt them afterwards)
    /// and their rows, inside the transaction the caller has open on the connection, if any. Returns the destroyed key ids
    /// (for <see cref="Envelope.Forget"/>); the caller then removes the chunks from the store.
    /// </summary>
    public static async Task<List<byte[]>> DestroyAsync(MySqlConnection connection, IReadOnlyCollection<long> ids)
    {
        var keys = new List<byte[]>();
        if (ids.Count == 0) return keys;
        await using var command = new MySqlCommand(
            $"SELECT a.key_id FROM {SqlLists.IdsTable} STRAIGHT_JOIN attachments a ON a.id = ids.id FOR UPDATE", connection);
        command.Parameters.AddWithValue("@ids", SqlLists.Ids(ids));
        await using (var reader = await command.ExecuteReaderAsync())
            while (await reader.ReadAsync()) keys.Add((byte[])reader.GetValue(0));
        // One statement per round trip (see Database.ExecuteEachAsync).
        await command.ExecuteEachAsync(
            $"DELETE k FROM {SqlLists.IdsTable} STRAIGHT_JOIN attachments a ON a.id = ids.id STRAIGHT_JOIN data_keys k ON k.id = a.key_id",
            $"DELETE a FROM {SqlLists.IdsTable} STRAIGHT_JOIN attachments a ON a.id = ids.id");
        return keys;
    }
}
