using Dapper;
using MySqlConnector;

namespace Ams.Infrastructure.Crypto;

/// <summary>
/// <c>Ams --rotate-keys</c>: re-wraps every data key that is not under the primary master key.
/// Sealed records are untouched; once it reports nothing left, older master keys can be removed.
/// </summary>
public static class KeyRotation
{
    public const string Flag = "--rotate-keys";
    const int BatchSize = 500;

    public sealed record Result(int Rewrapped, int Unreadable, int RemainingUnderOtherKeys);

    public static async Task<Result> RunAsync(MariaDb db, MasterKeys masterKeys, ILogger logger, CancellationToken ct = default)
    {
        int rewrapped = 0, unreadable = 0;
        var after = new byte[16];
        await using var connection = await db.OpenConnectionAsync(ct);
        while (true)
        {
            var batch = await NextBatchAsync(connection, masterKeys.PrimaryId, after, ct);
            if (batch.Count == 0) break;
            await using var transaction = await Transaction.BeginAsync(connection, ct);
            foreach (var row in batch)
            {
                var dataKey = masterKeys.TryGet(row.KekId, out var oldKek) ? Envelope.Unwrap(row.Wrapped, row.Id, row.KekId, oldKek) : null;
                if (dataKey is null)
                {
                    unreadable++;
                    logger.LogError("Data key {KeyId} is under master key '{KekId}', which is not configured or does not open it; left as is",
                        new Guid(row.Id, bigEndian: true), row.KekId);
                    continue;
                }
                var wrapped = Envelope.Wrap(dataKey, row.Id, masterKeys.PrimaryId, masterKeys.Primary);
                await using var update = new MySqlCommand(
                    "UPDATE data_keys SET kek_id = @kekId, wrapped = @wrapped WHERE id = @id AND kek_id = @oldKekId", connection);
                update.Parameters.AddWithValue("@kekId", masterKeys.PrimaryId);
                update.Parameters.AddWithValue("@wrapped", wrapped);
                update.Parameters.AddWithValue("@id", row.Id);
                update.Parameters.AddWithValue("@oldKekId", row.KekId);
                rewrapped += await update.ExecuteNonQueryAsync(ct);
            }
            await transaction.CommitAsync(ct);
            after = batch[^1].Id;
            if (batch.Count < BatchSize) break;
        }
        var remaining = await connection.ExecuteScalarAsync<int>("SELECT COUNT(*) FROM data_keys WHERE kek_id <> @primary",
            new { primary = masterKeys.PrimaryId }, commandTimeout: connection.CommandTimeout());
        logger.LogInformation("Key rotation: {Rewrapped} data keys re-wrapped under '{Primary}', {Unreadable} unreadable, {Remaining} still under other keys",
            rewrapped, masterKeys.PrimaryId, unreadable, remaining);
        return new Result(rewrapped, unreadable, remaining);
    }

    sealed record Row(byte[] Id, string KekId, byte[] Wrapped);

    // Plain MySqlCommand: Dapper.AOT would expand a byte[] parameter as a list.
    static async Task<List<Row>> NextBatchAsync(MySqlConnection connection, string primary, byte[] after, CancellationToken ct)
    {
        await using var select = new MySqlCommand(
            "SELECT id, kek_id, wrapped FROM data_keys WHERE kek_id <> @primary AND id > @after ORDER BY id LIMIT " + BatchSize, connection);
        select.Parameters.AddWithValue("@primary", primary);
        select.Parameters.AddWithValue("@after", after);
        var rows = new List<Row>();
        await using var reader = await select.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
            rows.Add(new Row((byte[])reader.GetValue(0), reader.GetString(1), (byte[])reader.GetValue(2)));
        return rows;
    }
}
