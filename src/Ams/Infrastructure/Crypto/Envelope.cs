using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using MySqlConnector;

namespace Ams.Infrastructure.Crypto;

/// <summary>
/// AES-256-GCM envelope encryption for everything sensitive at rest. Each sealed record gets
/// its own data key (so a 96-bit nonce is used exactly once per key), minted by the
/// <see cref="EntropyMixer"/> and stored wrapped by the primary master key in <c>data_keys</c>.
/// The associated data binds a ciphertext to its row (purpose, the caller's row fields, key id
/// and format version): a ciphertext copied into another row does not decrypt.
///
/// Sealed layout: version (1) ‖ data key id (16) ‖ nonce (12) ‖ ciphertext ‖ tag (16).
/// </summary>
public sealed class Envelope(MariaDb db, MasterKeys masterKeys, EntropyMixer mixer, IKeyMintCounter minted,
    TimeProvider time, ILogger<Envelope> logger)
{
    public const byte FormatVersion = 1;
    const int IdSize = 16, NonceSize = 12, TagSize = 16, Header = 1 + IdSize + NonceSize;
    static readonly byte[] DataKeyPurpose = "ams/data-key/v1"u8.ToArray();
    static readonly byte[] NoncePurpose = "ams/nonce/v1"u8.ToArray();

    // Unwrapped data keys by id, in two generations: keys are remembered in the newer one, and when
    // it holds half the limit the older one is dropped and a new one begun. A key found in the older
    // one is remembered again, so the keys in use (a conversation's recent messages, which readers
    // ask for most) stay while the node goes on sealing a key per message. A key dropped costs only
    // a query and an unwrap.
    sealed class Generation
    {
        public readonly ConcurrentDictionary<Guid, byte[]> Keys = new();
        // Counted here rather than with Keys.Count, which takes every lock of the dictionary and
        // showed up in the send profile (docs/benchmarks-history.md). Approximate is enough.
        public int Count;
    }
    Generation newer = new(), older = new();
    internal const int CacheLimit = 10_000;
    internal int CachedKeys => newer.Keys.Count + older.Keys.Keys.Count(id => !newer.Keys.ContainsKey(id));
    // A look without remembering the key again, for tests: asking must not change the answer.
    internal bool Caches(Guid id) => newer.Keys.ContainsKey(id) || older.Keys.ContainsKey(id);

    bool TryCached(Guid id, out byte[] dataKey)
    {
        if (Volatile.Read(ref newer).Keys.TryGetValue(id, out dataKey!)) return true;
        if (!Volatile.Read(ref older).Keys.TryGetValue(id, out dataKey!)) return false;
        Remember(id, dataKey);
        return true;
    }

    public sealed record Sealed(byte[] Blob, string Entropy);

    /// <summary>A sealed record's new data key, to be stored in the same transaction as the record.</summary>
    public sealed record PendingKey(byte[] Id, string KekId, byte[] Wrapped, string Entropy, DateTime CreatedAt)
    {
        /// <summary>The INSERT for this key, to run alone or as the first statement of a batch.</summary>
        public const string InsertSql =
            "INSERT INTO data_keys (id, kek_id, wrapped, entropy, created_at) VALUES (@keyId, @keyKekId, @keyWrapped, @keyEntropy, @keyCreatedAt);";

        public void AddParameters(MySqlCommand command)
        {
            // Plain MySqlCommand parameters: Dapper.AOT would expand a byte[] parameter as a list.
            command.Parameters.AddWithValue("@keyId", Id);
            command.Parameters.AddWithValue("@keyKekId", KekId);
            command.Parameters.AddWithValue("@keyWrapped", Wrapped);
            command.Parameters.AddWithValue("@keyEntropy", Entropy);
            command.Parameters.AddWithValue("@keyCreatedAt", CreatedAt);
        }
    }

    /// <summary>
    /// Encrypts <paramref name="plaintext"/> for the row described by <paramref name="purpose"/>
    /// and <paramref name="rowFields"/>, storing its new data key through
    /// <paramref name="connection"/> (inside the transaction the caller has open on it, if any).
    /// </summary>
    public async Task<Sealed> SealAsync(ReadOnlyMemory<byte> plaintext, string purpose, IReadOnlyList<string> rowFields,
        MySqlConnection connection)
    {
        var (sealedRecord, key) = Seal(plaintext.Span, purpose, rowFields);
        await using var insert = new MySqlCommand(PendingKey.InsertSql, connection);
        key.AddParameters(insert);
        await insert.ExecuteNonQueryAsync();
        return sealedRecord;
    }

    /// <summary>
    /// Encrypts as <see cref="SealAsync"/> does but leaves storing the key to the caller, who
    /// batches <see cref="PendingKey.InsertSql"/> with its own statements in one round trip.
    /// </summary>
    public (Sealed Sealed, PendingKey Key) Seal(ReadOnlySpan<byte> plaintext, string purpose, IReadOnlyList<string> rowFields)
    {
        var dataKey = new byte[32];
        var blob = new byte[Header + plaintext.Length + TagSize];
        var entropy = mixer.Fill(dataKey, DataKeyPurpose, blob.AsSpan(1 + IdSize, NonceSize), NoncePurpose);
        var id = Guid.CreateVersion7(time.GetUtcNow());
        var idBytes = id.ToByteArray(bigEndian: true);
        blob[0] = FormatVersion;
        idBytes.CopyTo(blob, 1);
        using (var aes = new AesGcm(dataKey, TagSize))
            aes.Encrypt(blob.AsSpan(1 + IdSize, NonceSize), plaintext, blob.AsSpan(Header, plaintext.Length),
                blob.AsSpan(Header + plaintext.Length), AssociatedData(purpose, rowFields, idBytes));

        var wrapped = Wrap(dataKey, idBytes, masterKeys.PrimaryId, masterKeys.Primary);
        Remember(id, dataKey);
        minted.Count(entropy);
        return (new Sealed(blob, entropy), new PendingKey(idBytes, masterKeys.PrimaryId, wrapped, entropy, time.GetUtcNow().UtcDateTime));
    }

    /// <summary>
    /// A fresh data key for a record that does its own encryption (an attachment's chunks), minted
    /// like every other key and wrapped by the primary master key; the caller stores
    /// <see cref="PendingKey"/> with its record. Deleting that <c>data_keys</c> row destroys it.
    /// </summary>
    public (byte[] DataKey, PendingKey Key) MintKey()
    {
        var dataKey = new byte[32];
        var entropy = mixer.Fill(dataKey, DataKeyPurpose);
        var id = Guid.CreateVersion7(time.GetUtcNow());
        var idBytes = id.ToByteArray(bigEndian: true);
        var wrapped = Wrap(dataKey, idBytes, masterKeys.PrimaryId, masterKeys.Primary);
        Remember(id, dataKey);
        minted.Count(entropy);
        return (dataKey, new PendingKey(idBytes, masterKeys.PrimaryId, wrapped, entropy, time.GetUtcNow().UtcDateTime));
    }

    /// <summary>A data key by its id (16 bytes, as stored), or null when it is gone or cannot be unwrapped.</summary>
    public Task<byte[]?> KeyAsync(byte[] keyId) =>
        keyId.Length == IdSize ? DataKeyAsync(new Guid(keyId, bigEndian: true), keyId) : Task.FromResult<byte[]?>(null);

    /// <summary>Drops destroyed keys from this node's cache (their data_keys rows are already deleted).</summary>
    public void Forget(IEnumerable<byte[]> keyIds)
    {
        foreach (var keyId in keyIds)
            if (keyId.Length == IdSize)
            {
                var id = new Guid(keyId, bigEndian: true);
                Volatile.Read(ref newer).Keys.TryRemove(id, out _);
                Volatile.Read(ref older).Keys.TryRemove(id, out _);
            }
    }

    /// <summary>The id of the data key a sealed blob was made with, or null for a blob of another format.</summary>
    public static byte[]? KeyIdOf(byte[] blob) =>
        blob.Length >= Header + TagSize && blob[0] == FormatVersion ? blob.AsSpan(1, IdSize).ToArray() : null;

    /// <summary>
    /// The plaintext, or null when the blob was tampered with, belongs to another row, or its key
    /// is gone. That is logged and left to the caller to show as undecryptable.
    /// </summary>
    public async Task<byte[]?> OpenAsync(byte[] blob, string purpose, IReadOnlyList<string> rowFields, IReadOnlyDictionary<Guid, byte[]>? held = null)
    {
        if (blob.Length < Header + TagSize || blob[0] != FormatVersion)
        {
            logger.LogWarning("Undecryptable {Purpose} ciphertext: unknown format", purpose);
            return null;
        }
        var idBytes = blob.AsSpan(1, IdSize).ToArray();
        var id = new Guid(idBytes, bigEndian: true);
        var dataKey = held is not null && held.TryGetValue(id, out var pinned) ? pinned : await DataKeyAsync(id, idBytes);
        if (dataKey is null)
        {
            logger.LogWarning("Undecryptable {Purpose} ciphertext: data key {KeyId} missing or not unwrappable", purpose, id);
            return null;
        }
        var length = blob.Length - Header - TagSize;
        var plaintext = new byte[length];
        try
        {
            using var aes = new AesGcm(dataKey, TagSize);
            aes.Decrypt(blob.AsSpan(1 + IdSize, NonceSize), blob.AsSpan(Header, length), blob.AsSpan(Header + length),
                plaintext, AssociatedData(purpose, rowFields, idBytes));
            return plaintext;
        }
        catch (AuthenticationTagMismatchException)
        {
            logger.LogWarning("Undecryptable {Purpose} ciphertext under data key {KeyId}: tampered, or moved from another row", purpose, id);
            return null;
        }
    }

    public Task<Sealed> SealStringAsync(string plaintext, string purpose, IReadOnlyList<string> rowFields,
        MySqlConnection connection) =>
        SealAsync(Encoding.UTF8.GetBytes(plaintext), purpose, rowFields, connection);

    public async Task<string?> OpenStringAsync(byte[] blob, string purpose, IReadOnlyList<string> rowFields, IReadOnlyDictionary<Guid, byte[]>? held = null) =>
        await OpenAsync(blob, purpose, rowFields, held) is { } bytes ? Encoding.UTF8.GetString(bytes) : null;

    /// <summary>
    /// Reads the data keys of <paramref name="keyIds"/> this node has not cached, in one query per
    /// 500 on the caller's connection, so that opening a page of records (each sealed under a key of
    /// its own) does not take a pooled connection and a round trip per record. Keys that are gone
    /// or do not unwrap are left to <see cref="OpenAsync"/>, which logs them.
    /// </summary>
    public async Task LoadKeysAsync(MySqlConnection connection, IEnumerable<byte[]?> keyIds)
    {
        var missing = keyIds.OfType<byte[]>().Where(k => k.Length == IdSize)
            .Select(k => (Id: new Guid(k, bigEndian: true), Bytes: k))
            .Where(k => !TryCached(k.Id, out _)).DistinctBy(k => k.Id).ToList();
        foreach (var chunk in missing.Chunk(500))
        {
            await using var select = new MySqlCommand { Connection = connection };
            for (var i = 0; i < chunk.Length; i++) select.Parameters.AddWithValue($"@k{i}", chunk[i].Bytes);
            select.CommandText = $"SELECT {KeyColumns} FROM data_keys WHERE id IN ({string.Join(",", chunk.Select((_, i) => $"@k{i}"))})";
            await using var reader = await select.ExecuteReaderAsync();
            while (await reader.ReadAsync()) UnwrapRow(reader);
        }
    }

    /// <summary>
    /// The data keys of <paramref name="keyIds"/> this node holds now (after <see cref="LoadKeysAsync"/>:
    /// those that exist and unwrap), to open records read under them with (<see cref="OpenAsync"/>'s
    /// <c>held</c>): an edit or delete on this node forgets its old key, and a page read just
    /// before it would otherwise find that key gone between this check and the opening.
    /// </summary>
    public Dictionary<Guid, byte[]> Held(IEnumerable<byte[]?> keyIds)
    {
        var held = new Dictionary<Guid, byte[]>();
        foreach (var keyId in keyIds)
            if (keyId is { Length: IdSize } && new Guid(keyId, bigEndian: true) is var id && TryCached(id, out var dataKey)) held[id] = dataKey;
        return held;
    }

    async Task<byte[]?> DataKeyAsync(Guid id, byte[] idBytes)
    {
        if (TryCached(id, out var known)) return known;
        await using var connection = await db.OpenConnectionAsync();
        await using var select = new MySqlCommand($"SELECT {KeyColumns} FROM data_keys WHERE id = @id", connection);
        select.Parameters.AddWithValue("@id", idBytes);
        await using var reader = await select.ExecuteReaderAsync();
        return await reader.ReadAsync() ? UnwrapRow(reader) : null;
    }

    const string KeyColumns = "id, kek_id, wrapped";

    /// <summary>The data key of a <see cref="KeyColumns"/> row, remembered; null when its master key is unknown or it does not unwrap.</summary>
    byte[]? UnwrapRow(MySqlDataReader reader)
    {
        var idBytes = (byte[])reader.GetValue(0);
        var kekId = reader.GetString(1);
        if (!masterKeys.TryGet(kekId, out var kek) || Unwrap((byte[])reader.GetValue(2), idBytes, kekId, kek) is not { } dataKey) return null;
        Remember(new Guid(idBytes, bigEndian: true), dataKey);
        return dataKey;
    }

    void Remember(Guid id, byte[] dataKey)
    {
        var generation = Volatile.Read(ref newer);
        generation.Keys[id] = dataKey;
        if (Interlocked.Increment(ref generation.Count) != CacheLimit / 2) return;
        // Older first: in between, both are this one and nothing is missed.
        Volatile.Write(ref older, generation);
        Volatile.Write(ref newer, new Generation());
    }

    // Length-prefixed, so no two different field lists encode alike.
    internal static byte[] AssociatedData(string purpose, IReadOnlyList<string> rowFields, byte[] keyId)
    {
        var buffer = new List<byte> { FormatVersion };
        void Add(ReadOnlySpan<byte> part)
        {
            Span<byte> length = stackalloc byte[4];
            BinaryPrimitives.WriteInt32BigEndian(length, part.Length);
            buffer.AddRange(length);
            buffer.AddRange(part);
        }
        Add(Encoding.UTF8.GetBytes(purpose));
        Add(keyId);
        foreach (var field in rowFields) Add(Encoding.UTF8.GetBytes(field));
        return buffer.ToArray();
    }

    // Wrapped layout: nonce (12) ‖ encrypted data key (32) ‖ tag (16); bound to its id and master key id.
    internal static byte[] Wrap(byte[] dataKey, byte[] keyId, string kekId, byte[] kek)
    {
        var wrapped = new byte[NonceSize + dataKey.Length + TagSize];
        RandomNumberGenerator.Fill(wrapped.AsSpan(0, NonceSize));
        using var aes = new AesGcm(kek, TagSize);
        aes.Encrypt(wrapped.AsSpan(0, NonceSize), dataKey, wrapped.AsSpan(NonceSize, dataKey.Length),
            wrapped.AsSpan(NonceSize + dataKey.Length), WrapAssociatedData(keyId, kekId));
        return wrapped;
    }

    internal static byte[]? Unwrap(byte[] wrapped, byte[] keyId, string kekId, byte[] kek)
    {
        if (wrapped.Length != NonceSize + 32 + TagSize) return null;
        var dataKey = new byte[32];
        try
        {
            using var aes = new AesGcm(kek, TagSize);
            aes.Decrypt(wrapped.AsSpan(0, NonceSize), wrapped.AsSpan(NonceSize, 32), wrapped.AsSpan(NonceSize + 32), dataKey,
                WrapAssociatedData(keyId, kekId));
            return dataKey;
        }
        catch (AuthenticationTagMismatchException)
        {
            return null;
        }
    }

    static byte[] WrapAssociatedData(byte[] keyId, string kekId) =>
        [.. "ams/wrap/v1|"u8, .. keyId, .. "|"u8, .. Encoding.ASCII.GetBytes(kekId)];
}

/// <summary>Told of every data key minted, with the entropy mode that made it; must not throw or block.</summary>
public interface IKeyMintCounter
{
    void Count(string entropy);
}
