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

    public static async Task CompleteAsync(MySqlConnection connection, long id, long size, byte[] meta)
    {
        await using var update = new MySqlCommand("UPDATE attachments SET state = 'ready', size = @size, meta = @meta WHERE id = @id", connection);
        update.Parameters.AddWithValue("@id", id);
        update.Parameters.AddWithValue("@size", size);
        update.Parameters.AddWithValue("@meta", meta);
        await update.ExecuteNonQueryAsync();
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

    /// <summary>Uploads never sent within the lifetime, and uploads interrupted long ago.</summary>
    public static async Task<List<long>> ExpiredAsync(MySqlConnection connection, DateTime unsentBefore, DateTime uploadingBefore, int limit) =>
        (await connection.QueryAsync<long>("""
            SELECT id FROM attachments
            WHERE ((message_id IS NULL OR message_id = 0) AND created_at < @unsentBefore)
               OR (state = 'uploading' AND created_at < @uploadingBefore)
            ORDER BY id LIMIT @limit
            """, new { unsentBefore, uploadingBefore, limit }, commandTimeout: connection.CommandTimeout())).ToList();
}
