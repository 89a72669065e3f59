using System.Security.Cryptography;
using System.Text;
using Ams.Infrastructure;
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

    /// <summary>A send's key and the hash of what it asked for, which a retry must match.</summary>
    public sealed record Key(string Value, string RequestSha256);

    public sealed record Earlier(long MessageId, bool SameRequest);

    /// <summary>False for a malformed header; <paramref name="key"/> is null when there is none.</summary>
    public static bool TryRead(HttpRequest http, Request req, out Key? key)
    {
        key = null;
        if (!http.Headers.TryGetValue(Header, out var values)) return true;
        if (values.Count != 1 || values[0] is not { Length: > 0 and <= MaxLength } value || !value.All(c => c is > ' ' and <= '~')) return false;
        key = new Key(value, RequestSha256(req));
        return true;
    }

    // The fields that decide what is sent, each length-prefixed so no two requests share an encoding;
    // ids and names as the send reads them ("012" is conversation 12, " Bob" is bob).
    static string RequestSha256(Request req)
    {
        var text = new StringBuilder();
        foreach (var field in new[] { Canonical(req.ConversationId ?? ""), req.To?.Trim().ToLowerInvariant() ?? "", req.Body, string.Join(',', (req.Attachments ?? []).Select(Canonical)) })
            text.Append(field.Length).Append(':').Append(field);
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text.ToString())));
    }

    static string Canonical(string id) => Ids.TryParse(id, out var parsed) ? Ids.Of(parsed) : id;

    /// <summary>The send this key already named within its lifetime; an expired one is forgotten here so the key can be used again.</summary>
    public static async Task<Earlier?> FindAsync(MySqlConnection connection, long senderId, Key key, DateTime now)
    {
        var row = await connection.QuerySingleOrDefaultAsync<StoredKey>("""
            SELECT message_id AS MessageId, request_sha256 AS RequestSha256, created_at AS CreatedAt
            FROM idempotency_keys WHERE sender_id = @senderId AND idempotency_key = @value
            """, new { senderId, value = key.Value }, commandTimeout: connection.CommandTimeout());
        if (row is null) return null;
        if (row.CreatedAt >= now - Lifetime) return new Earlier(row.MessageId, CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(row.RequestSha256), Encoding.ASCII.GetBytes(key.RequestSha256)));
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
        public string RequestSha256 { get; set; } = "";
        public DateTime CreatedAt { get; set; }
    }
}
