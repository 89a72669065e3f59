using System.Buffers.Text;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace Ams.Infrastructure;

/// <summary>
/// The second-factor challenge: what the password step returns when 2FA is on. Short-lived,
/// single use, good for nothing but <c>POST /api/login/2fa</c>; Redis holds only its hash.
/// </summary>
public sealed class Challenges(RedisCircuit redis, TimeProvider time)
{
    public static readonly TimeSpan Lifetime = TimeSpan.FromMinutes(5);
    const string Prefix = "amc_";

    /// <param name="passwordHash">The hash of the password the sign-in verified: a challenge is for that password only.</param>
    public async Task<(string Challenge, DateTimeOffset ExpiresAt)> CreateAsync(long userId, string passwordHash)
    {
        var challenge = Prefix + Base64Url.EncodeToString(RandomNumberGenerator.GetBytes(32));
        var value = string.Create(CultureInfo.InvariantCulture, $"{userId}:{PasswordStamp(passwordHash)}");
        await redis.CallAsync(Key(IdOf(challenge)), db => db.StringSetAsync(Key(IdOf(challenge)), value, Lifetime));
        return (challenge, time.GetUtcNow() + Lifetime);
    }

    /// <summary>
    /// The user the challenge is for, without using it up; null when unknown or expired. Stamp: the
    /// password it was made for (<see cref="PasswordStamp"/>); null for one made by a node of 0.15,
    /// which kept none (they last 5 minutes).
    /// </summary>
    public async Task<(string Id, long UserId, string? Stamp)?> FindAsync(string challenge)
    {
        if (!challenge.StartsWith(Prefix, StringComparison.Ordinal) || challenge.Length > 64) return null;
        var id = IdOf(challenge);
        var value = await redis.CallAsync(Key(id), db => db.StringGetAsync(Key(id)));
        if (value.IsNull) return null;
        var text = value.ToString();
        var colon = text.IndexOf(':');
        return colon < 0 ? (id, long.Parse(text, CultureInfo.InvariantCulture), null)
            : (id, long.Parse(text.AsSpan(0, colon), CultureInfo.InvariantCulture), text[(colon + 1)..]);
    }

    /// <summary>
    /// Which password a challenge was made for: a password changed or reset since (the hash has a
    /// new salt every time) makes the challenge worthless, as the password step would now refuse.
    /// A truncated digest of the hash, so Redis holds nothing that could be tried against.
    /// </summary>
    public static string PasswordStamp(string passwordHash) =>
        Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(passwordHash)).AsSpan(0, 8));

    /// <summary>Uses the challenge up; false when another request got there first.</summary>
    public Task<bool> RedeemAsync(string id) => redis.CallAsync(Key(id), db => db.KeyDeleteAsync(Key(id)));

    public static string IdOf(string challenge) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(challenge)));
    static string Key(string id) => $"{Redis.KeyPrefix}2fa-challenge:{id}";
}
