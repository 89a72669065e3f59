using Ams.Infrastructure;
using Ams.Infrastructure.Crypto;
using Ams.Infrastructure.Files;
using Dapper;
using MySqlConnector;

namespace Ams.Features.Attachments;

static class Sql
{
    /// <summary>What the user's files occupy now (sent, unsent and still arriving).</summary>
    public static Task<long> UsedBytesAsync(MySqlConnection connection, long userId) =>
        connection.QuerySingleAsync<long>("SELECT CAST(COALESCE(SUM(size), 0) AS SIGNED) FROM attachments WHERE uploader_id = @userId", new { userId }, commandTimeout: connection.CommandTimeout());

    /// <summary>The attachment's row and its data key in one transaction; returns its id.</summary>
    public static async Task<long> BeginAsync(MySqlConnection connection, long uploaderId, Envelope.PendingKey key, byte[] noncePrefix, DateTime now)
    {
        await using var transaction = await Transaction.BeginAsync(connection);
        await using var insert = new MySqlCommand { Connection = connection };
        key.AddParameters(insert);
        insert.Parameters.AddWithValue("@uploader", uploaderId);
        insert.Parameters.AddWithValue("@chunkSize", ChunkCipher.ChunkSize);
        insert.Parameters.AddWithValue("@prefix", noncePrefix);
        insert.Parameters.AddWithValue("@now", now);
        await insert.ExecuteEachAsync(Envelope.PendingKey.InsertSql, """
            INSERT INTO attachments (uploader_id, state, chunk_size, key_id, nonce_prefix, created_at)
                VALUES (@uploader, 'uploading', @chunkSize, @keyId, @prefix, @now)
            """);
        var id = insert.LastInsertedId;
        await transaction.CommitAsync();
        return id;
    }

    /// <summary>
    /// Marks the upload ready, its unsent lifetime starting now; false when its row is gone (the
    /// upload ran past the sweeper's limit for interrupted uploads), so that nothing is reported stored.
    /// </summary>
    public static async Task<bool> CompleteAsync(MySqlConnection connection, long id, long size, byte[] meta, DateTime now)
    {
        await using var update = new MySqlCommand(
            "UPDATE attachments SET state = 'ready', size = @size, meta = @meta, created_at = @now WHERE id = @id AND state = 'uploading'", connection);
        update.Parameters.AddWithValue("@id", id);
        update.Parameters.AddWithValue("@size", size);
        update.Parameters.AddWithValue("@meta", meta);
        update.Parameters.AddWithValue("@now", now);
        return await update.ExecuteNonQueryAsync() == 1;
    }

    /// <summary>
    /// The attachment if the user may read it: its uploader while it is unsent, afterwards a
    /// member of the conversation it was sent to who can see that message. Null for everyone else.
    /// </summary>
    public static async Task<AttachmentRow?> ReadableAsync(MySqlConnection connection, long userId, long id) =>
        (await connection.QueryAsync<AttachmentRow>($"""
            SELECT {AttachmentRow.Columns} FROM attachments a
            WHERE a.id = @id AND a.state = 'ready' AND (
                (a.uploader_id = @userId AND (a.message_id IS NULL OR a.message_id = 0))
                OR EXISTS (SELECT 1 FROM messages m
                    JOIN conversation_members cm ON cm.conversation_id = m.conversation_id AND cm.user_id = @userId
                    WHERE m.id = a.message_id AND m.deleted_at IS NULL AND m.id > cm.joined_after_message_id))
            """, new { id, userId }, commandTimeout: connection.CommandTimeout())).FirstOrDefault();

    // Unsent: never claimed by a send, or claimed by one that can no longer be storing it.
    const string Expired = """
        (a.state = 'ready' AND a.created_at < @unsentBefore
            AND (a.message_id IS NULL OR (a.message_id = 0 AND (a.claimed_at IS NULL OR a.claimed_at < @claimedBefore))))
        OR (a.state = 'uploading' AND a.created_at < @uploadingBefore)
        """;

    /// <summary>Uploads never sent within the lifetime, and uploads interrupted long ago: candidates, read without locks.</summary>
    public static async Task<List<long>> ExpiredAsync(MySqlConnection connection, Expiry expiry, int limit) =>
        (await connection.QueryAsync<long>($"SELECT a.id FROM attachments a WHERE {Expired} ORDER BY a.id LIMIT @limit",
            new { expiry.UnsentBefore, expiry.ClaimedBefore, expiry.UploadingBefore, limit }, commandTimeout: connection.CommandTimeout())).ToList();

    /// <summary>
    /// The candidates still expired, locked for the caller's transaction: a send may have claimed
    /// one, or an upload finished, since they were read.
    /// </summary>
    public static async Task<List<long>> LockExpiredAsync(MySqlConnection connection, Expiry expiry, List<long> candidates) =>
        (await connection.QueryAsync<long>($"SELECT a.id FROM {SqlLists.IdsTable} STRAIGHT_JOIN attachments a ON a.id = ids.id WHERE {Expired} FOR UPDATE",
            new { ids = SqlLists.Ids(candidates), expiry.UnsentBefore, expiry.ClaimedBefore, expiry.UploadingBefore },
            commandTimeout: connection.CommandTimeout())).ToList();

    public readonly record struct Expiry(DateTime UnsentBefore, DateTime ClaimedBefore, DateTime UploadingBefore);
}
