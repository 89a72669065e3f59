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

    public async Task<(string Challenge, DateTimeOffset ExpiresAt)> CreateAsync(long userId)
    {
        var challenge = Prefix + Base64Url.EncodeToString(RandomNumberGenerator.GetBytes(32));
        await redis.CallAsync(Key(IdOf(challenge)), db => db.StringSetAsync(Key(IdOf(challenge)), userId.ToString(CultureInfo.InvariantCulture), Lifetime));
        return (challenge, time.GetUtcNow() + Lifetime);
    }

    /// <summary>The user the challenge is for, without using it up; null when unknown or expired.</summary>
    public async Task<(string Id, long UserId)?> FindAsync(string challenge)
    {
        if (!challenge.StartsWith(Prefix, StringComparison.Ordinal) || challenge.Length > 64) return null;
        var id = IdOf(challenge);
        var value = await redis.CallAsync(Key(id), db => db.StringGetAsync(Key(id)));
        return value.IsNull ? null : (id, long.Parse(value.ToString(), CultureInfo.InvariantCulture));
    }

    /// <summary>Uses the challenge up; false when another request got there first.</summary>
    public Task<bool> RedeemAsync(string id) => redis.CallAsync(Key(id), db => db.KeyDeleteAsync(Key(id)));

    public static string IdOf(string challenge) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(challenge)));
    static string Key(string id) => $"{Redis.KeyPrefix}2fa-challenge:{id}";
}
