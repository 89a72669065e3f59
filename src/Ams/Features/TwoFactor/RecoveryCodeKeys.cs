using System.Security.Cryptography;
using Ams.Infrastructure;
using Ams.Infrastructure.Crypto;
using Dapper;
using MySqlConnector;

namespace Ams.Features.TwoFactor;

/// <summary>
/// The keys recovery codes are hashed under: HMAC keys derived (HKDF) from the master keys, the
/// first one for new codes. Only the codes' hashes are kept, so they can never be hashed again
/// under a new master key; instead the key derived from each master key the server has run with is
/// kept too, sealed in <c>recovery_code_keys</c>, and <c>--rotate-keys</c> re-wraps its data key
/// like any other. Codes so outlive the master key they were made under (an operator who followed
/// the rotation steps and dropped the old key lost every user's recovery codes).
/// </summary>
public static class RecoveryCodeKeys
{
    const string Purpose = "recovery-code-key";

    public static byte[] Derive(byte[] masterKey)
    {
        var key = new byte[32];
        HKDF.DeriveKey(HashAlgorithmName.SHA256, masterKey, key, salt: [], info: "ams/recovery-code-hmac/v2"u8);
        return key;
    }

    /// <summary>Keeps the key derived from each listed master key that is not kept yet. At every start, before serving or re-wrapping.</summary>
    public static async Task KeepAsync(MariaDb db, Envelope envelope, MasterKeys masterKeys, DateTime now, CancellationToken ct)
    {
        // Galera nodes starting together may both write a key: the one certified second conflicts
        // (a deadlock error), and finds it kept when it looks again.
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await KeepOnceAsync(db, envelope, masterKeys, now, ct);
                return;
            }
            catch (Exception e) when (ConflictRetry.IsConflict(e) && attempt < ConflictRetry.Attempts)
            {
                await Task.Delay(ConflictRetry.BackOff(attempt), ct);
            }
        }
    }

    static async Task KeepOnceAsync(MariaDb db, Envelope envelope, MasterKeys masterKeys, DateTime now, CancellationToken ct)
    {
        await using var connection = await db.OpenConnectionAsync(ct);
        var kept = await KeptAsync(connection);
        await RefuseReusedIdsAsync(envelope, masterKeys, kept);
        foreach (var id in masterKeys.Ids.Where(id => !kept.ContainsKey(id)).Order(StringComparer.Ordinal))
        {
            masterKeys.TryGet(id, out var masterKey);
            await using var transaction = await Transaction.BeginAsync(connection, ct);
            var sealedKey = await envelope.SealAsync(Derive(masterKey), Purpose, [id], connection);
            await using var insert = new MySqlCommand(
                "INSERT IGNORE INTO recovery_code_keys (master_key_id, sealed, created_at) VALUES (@id, @sealed, @now)", connection);
            insert.Parameters.AddWithValue("@id", id);
            insert.Parameters.AddWithValue("@sealed", sealedKey.Blob);
            insert.Parameters.AddWithValue("@now", now);
            // Another node starting at the same time kept it first: its copy stands, this data key goes.
            if (await insert.ExecuteNonQueryAsync(ct) == 1) await transaction.CommitAsync(ct);
            else await transaction.RollbackAsync(ct);
        }
    }

    /// <summary>
    /// An id listed with another key than the one kept under it (an id used again after its key
    /// was dropped, or a typo where no data key is left under the id to show it): the codes made
    /// under the earlier key would be checked against the new one and refused, one failed second
    /// step each. The kept key cannot move to another id, so the new key needs an id of its own.
    /// </summary>
    static async Task RefuseReusedIdsAsync(Envelope envelope, MasterKeys masterKeys, Dictionary<string, byte[]> kept)
    {
        foreach (var (id, sealedKey) in kept.OrderBy(k => k.Key, StringComparer.Ordinal))
            if (masterKeys.TryGet(id, out var masterKey) && await envelope.OpenAsync(sealedKey, Purpose, [id]) is { } earlier
                && !CryptographicOperations.FixedTimeEquals(earlier, Derive(masterKey)))
                throw new ConfigurationException(
                    $"Crypto:MasterKeys key '{id}' is not the key that id stood for before: recovery codes made under the earlier '{id}' " +
                    "are checked with a key derived from it and kept under that id. Give the new key an id never used before (README: Rotating the master key).");
    }

    /// <summary>
    /// Every key a stored code may be hashed under, the first master key's first: the listed master
    /// keys' own, then those kept for master keys no longer listed.
    /// </summary>
    public static async IAsyncEnumerable<byte[]> AllAsync(MySqlConnection connection, Envelope envelope, MasterKeys masterKeys)
    {
        yield return Derive(masterKeys.Primary);
        foreach (var id in masterKeys.Ids.Where(id => id != masterKeys.PrimaryId))
            if (masterKeys.TryGet(id, out var key)) yield return Derive(key);
        foreach (var (id, sealedKey) in await KeptAsync(connection))
            if (!masterKeys.TryGet(id, out _) && await envelope.OpenAsync(sealedKey, Purpose, [id]) is { } key)
                yield return key;
    }

    // Plain MySqlCommand for the byte[] column (see Envelope).
    static async Task<Dictionary<string, byte[]>> KeptAsync(MySqlConnection connection)
    {
        var kept = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        await using var select = new MySqlCommand("SELECT master_key_id, sealed FROM recovery_code_keys", connection);
        await using var reader = await select.ExecuteReaderAsync();
        while (await reader.ReadAsync())
            kept[reader.GetString(0)] = (byte[])reader.GetValue(1);
        return kept;
    }
}
