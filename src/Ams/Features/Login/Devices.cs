using System.Buffers.Binary;
using System.Buffers.Text;
using System.Security.Cryptography;
using Ams.Infrastructure;
using StackExchange.Redis;

namespace Ams.Features.Login;

/// <summary>A device that has signed in to this account before, proven by its device token.</summary>
public sealed record Device(string Id, long UserId, string Token);

/// <summary>
/// OWASP's device cookies ("Slow Down Online Guessing Attacks with Device Cookies"): a
/// successful sign-in gives the client a token naming the account, signed with HMAC-SHA256.
/// A client that presents a valid one for the account it signs in to is judged by its own
/// failure budget, not the account's, so strangers guessing a password cannot lock the owner
/// out. The browser keeps it in an HttpOnly cookie; API clients get <c>deviceToken</c> in the
/// login answer and send it back with the next login. The signing key is made once and kept
/// in Redis, so every node accepts every node's tokens.
/// </summary>
public sealed class Devices(RedisCircuit redis)
{
    public static readonly TimeSpan Lifetime = TimeSpan.FromDays(365);
    const string Prefix = "amd_";
    const int IdBytes = 16;
    const int MacBytes = 32;
    byte[]? key;

    public static string CookieName(HttpRequest request) => request.IsHttps ? "__Host-ams_device" : "ams_device";

    public async Task<string> IssueAsync(long userId)
    {
        var body = new byte[8 + IdBytes];
        BinaryPrimitives.WriteInt64BigEndian(body, userId);
        RandomNumberGenerator.Fill(body.AsSpan(8));
        var mac = HMACSHA256.HashData(await KeyAsync(), body);
        return Prefix + Base64Url.EncodeToString([.. body, .. mac]);
    }

    /// <summary>The device a token proves, or null for anything not signed by this deployment.</summary>
    public async Task<Device?> ReadAsync(string? token)
    {
        if (token is null || !token.StartsWith(Prefix, StringComparison.Ordinal) || token.Length > 100) return null;
        var bytes = new byte[8 + IdBytes + MacBytes];
        // TryDecodeFromChars throws on characters outside base64url (or a length it cannot be), as a
        // truncated or tampered cookie has: only the destination's size is "tried".
        var encoded = token.AsSpan(Prefix.Length);
        if (!Base64Url.IsValid(encoded, out var length) || length != bytes.Length
            || !Base64Url.TryDecodeFromChars(encoded, bytes, out var written) || written != bytes.Length) return null;
        var secret = await KeyAsync();
        var expected = HMACSHA256.HashData(secret, bytes.AsSpan(0, 8 + IdBytes));
        if (!CryptographicOperations.FixedTimeEquals(expected, bytes.AsSpan(8 + IdBytes))) return null;
        return new Device(Convert.ToHexStringLower(bytes.AsSpan(8, IdBytes)), BinaryPrimitives.ReadInt64BigEndian(bytes), token);
    }

    public static CookieOptions CookieOptions(HttpRequest request) => new()
    {
        HttpOnly = true,
        Secure = request.IsHttps,
        SameSite = SameSiteMode.Strict,
        Path = "/",
        Expires = DateTimeOffset.UtcNow + Lifetime,
        IsEssential = true,
    };

    async Task<byte[]> KeyAsync()
    {
        if (key is not null) return key;
        RedisKey name = $"{Redis.KeyPrefix}device-token-key";
        var stored = await redis.CallAsync(name, async db =>
        {
            await db.StringSetAsync(name, Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)), when: When.NotExists);
            return await db.StringGetAsync(name);
        });
        return key = Convert.FromBase64String(stored.ToString());
    }
}
