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

    /// <summary>
    /// Refuses to serve while data keys are wrapped under a master key the configuration does not
    /// list, or lists with another value (a typo, a key from another deployment): everything they
    /// protect (messages, files, two-factor secrets, recovery codes) would read as missing, quietly,
    /// with the node healthy. Before serving, so that nothing is written either.
    /// </summary>
    public static async Task RefuseUnreadableDataKeysAsync(MariaDb db, MasterKeys masterKeys, CancellationToken ct)
    {
        await using var connection = await db.OpenConnectionAsync(ct);
        // DISTINCT reads the kek_id index by its groups, not every data key.
        var kekIds = (await connection.QueryAsync<string>("SELECT DISTINCT kek_id FROM data_keys", commandTimeout: connection.CommandTimeout())).ToList();
        foreach (var kekId in kekIds)
        {
            if (!masterKeys.TryGet(kekId, out var kek)) continue;
            // Several, so that one damaged row (shown as undecryptable where it is used) does not
            // keep every node from starting.
            var sample = await SampleAsync(connection, kekId, ct);
            if (sample.Count > 0 && sample.All(row => Envelope.Unwrap(row.Wrapped, row.Id, row.KekId, kek) is null))
                throw new ConfigurationException(
                    $"Crypto:MasterKeys key '{kekId}' opens none of the {sample.Count} data keys tried of those wrapped under that id: " +
                    "it is not the key they were wrapped with (or every row tried is damaged).");
        }
        var unlisted = kekIds.Where(id => !masterKeys.TryGet(id, out _)).Order(StringComparer.Ordinal).ToList();
        if (unlisted.Count == 0) return;
        long count = 0;
        foreach (var kekId in unlisted)
            count += await connection.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM data_keys WHERE kek_id = @kekId",
                new { kekId }, commandTimeout: connection.CommandTimeout());
        throw new ConfigurationException(
            $"{count} data keys are wrapped under master key {string.Join(", ", unlisted.Select(id => $"'{id}'"))}, which Crypto:MasterKeys does not list, " +
            "so what they protect cannot be read. List it after the current key, then run --rotate-keys (README: Rotating the master key).");
    }

    sealed record Row(byte[] Id, string KekId, byte[] Wrapped);

    /// <summary>Up to eight data keys wrapped under <paramref name="kekId"/>, to try the configured key on.</summary>
    static async Task<List<Row>> SampleAsync(MySqlConnection connection, string kekId, CancellationToken ct)
    {
        await using var select = new MySqlCommand("SELECT id, kek_id, wrapped FROM data_keys WHERE kek_id = @kekId LIMIT 8", connection);
        select.Parameters.AddWithValue("@kekId", kekId);
        return await RowsAsync(select, ct);
    }

    // Plain MySqlCommand: Dapper.AOT would expand a byte[] parameter as a list.
    static async Task<List<Row>> NextBatchAsync(MySqlConnection connection, string primary, byte[] after, CancellationToken ct)
    {
        await using var select = new MySqlCommand(
            "SELECT id, kek_id, wrapped FROM data_keys WHERE kek_id <> @primary AND id > @after ORDER BY id LIMIT " + BatchSize, connection);
        select.Parameters.AddWithValue("@primary", primary);
        select.Parameters.AddWithValue("@after", after);
        return await RowsAsync(select, ct);
    }

    static async Task<List<Row>> RowsAsync(MySqlCommand select, CancellationToken ct)
    {
        var rows = new List<Row>();
        await using var reader = await select.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
            rows.Add(new Row((byte[])reader.GetValue(0), reader.GetString(1), (byte[])reader.GetValue(2)));
        return rows;
    }
}
