using System.Security.Cryptography;
using System.Text;
using Ams.Infrastructure;
using Ams.Infrastructure.Crypto;
using Ams.Infrastructure.Messaging;
using Dapper;
using MySqlConnector;

namespace Ams.Features.SendMessage;

/// <summary>
/// <c>Idempotency-Key</c> (api.md): a client that lost the answer to a send (a 503, a dropped
/// connection after the commit) retries with the same key and gets the first send's message back,
/// with nothing stored twice. The key is written with the message, in its transaction (see Sql).
/// </summary>
static class IdempotencyKeys
{
    public const string Header = "Idempotency-Key";
    public const int MaxLength = 64;

    /// <summary>What <see cref="TryRead"/> accepts, for the API document.</summary>
    public static readonly string Pattern = $"^[!-~]{{1,{MaxLength}}}$";
    public static readonly TimeSpan Lifetime = TimeSpan.FromHours(24);
    public const int SweepBatch = 10000;

    /// <summary>
    /// A send's key and what it asked for: <see cref="RequestHmac"/> (under the current master key)
    /// is stored, and a retry must match it.
    /// </summary>
    public sealed record Key(string Value, byte[] Request, string RequestHmac);

    public sealed record Earlier(long MessageId, bool SameRequest);

    /// <summary>False for a malformed header; <paramref name="key"/> is null when there is none.</summary>
    public static bool TryRead(HttpRequest http, Request req, MasterKeys masterKeys, out Key? key)
    {
        key = null;
        if (!http.Headers.TryGetValue(Header, out var values)) return true;
        if (values.Count != 1 || values[0] is not { Length: > 0 and <= MaxLength } value || !value.All(c => c is > ' ' and <= '~')) return false;
        var request = Canonical(req);
        key = new Key(value, request, Hmac(masterKeys.Primary, request));
        return true;
    }

    // The fields that decide what is sent, each length-prefixed so no two requests share an encoding;
    // ids and names as the send reads them ("012" is conversation 12, " Bob" is bob).
    static byte[] Canonical(Request req)
    {
        var text = new StringBuilder();
        foreach (var field in new[] { Canonical(req.ConversationId ?? ""), req.To?.Trim().ToLowerInvariant() ?? "", req.Body, string.Join(',', (req.Attachments ?? []).Select(Canonical)) })
            text.Append(field.Length).Append(':').Append(field);
        return Encoding.UTF8.GetBytes(text.ToString());
    }

    // Keyed, because the request holds the message's body: a plain hash in a dump would confirm a
    // guessed body, and outlive the message's deletion for a day.
    static string Hmac(byte[] masterKey, byte[] request)
    {
        Span<byte> key = stackalloc byte[32];
        HKDF.DeriveKey(HashAlgorithmName.SHA256, masterKey, key, salt: [], info: "ams/idempotency-request/v1"u8);
        return Convert.ToHexStringLower(HMACSHA256.HashData(key, request));
    }

    /// <summary>Whether a stored HMAC names this request, under any listed master key (nodes mid-rotation store under either).</summary>
    static bool SameRequest(string stored, Key key, MasterKeys masterKeys)
    {
        var match = false;
        foreach (var id in masterKeys.Ids)
        {
            masterKeys.TryGet(id, out var masterKey);
            match |= CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(stored), Encoding.ASCII.GetBytes(Hmac(masterKey, key.Request)));
        }
        return match;
    }

    static string Canonical(string id) => Ids.TryParse(id, out var parsed) ? Ids.Of(parsed) : id;

    /// <summary>The send this key already named within its lifetime; an expired one is forgotten here so the key can be used again.</summary>
    public static async Task<Earlier?> FindAsync(MySqlConnection connection, long senderId, Key key, MasterKeys masterKeys, DateTime now)
    {
        var row = await connection.QuerySingleOrDefaultAsync<StoredKey>("""
            SELECT message_id AS MessageId, request_sha256 AS RequestHmac, created_at AS CreatedAt
            FROM idempotency_keys WHERE sender_id = @senderId AND idempotency_key = @value
            """, new { senderId, value = key.Value }, commandTimeout: connection.CommandTimeout());
        if (row is null) return null;
        if (row.CreatedAt >= now - Lifetime) return new Earlier(row.MessageId, SameRequest(row.RequestHmac, key, masterKeys));
        await connection.ExecuteAsync("DELETE FROM idempotency_keys WHERE sender_id = @senderId AND idempotency_key = @value AND created_at < @cutoff",
            new { senderId, value = key.Value, cutoff = now - Lifetime }, commandTimeout: connection.CommandTimeout());
        return null;
    }

    /// <summary>Deletes expired keys, a bounded batch at a time; how many went.</summary>
    public static Task<int> SweepAsync(MySqlConnection connection, DateTime now) =>
        connection.ExecuteAsync($"DELETE FROM idempotency_keys WHERE created_at < @cutoff LIMIT {SweepBatch}", new { cutoff = now - Lifetime }, commandTimeout: connection.CommandTimeout());

    // internal, not private: Dapper.AOT's generated reader must see the type, or the call falls back to reflection (IL2104 at publish).
    internal sealed class StoredKey
    {
        public long MessageId { get; set; }
        public string RequestHmac { get; set; } = "";
        public DateTime CreatedAt { get; set; }
    }
}
