using System.Security.Cryptography;
using System.Text;
using Ams.Infrastructure;
using Ams.Infrastructure.Crypto;
using MySqlConnector;
using OtpNet;
using StackExchange.Redis;

namespace Ams.Features.TwoFactor;

public sealed class GuardOptions
{
    public int MaxFailuresPerAccount { get; set; } = 5;
    public int MaxFailuresPerChallenge { get; set; } = 3;
    public TimeSpan Window { get; set; } = TimeSpan.FromMinutes(15);
}

/// <summary>
/// RFC 6238 codes (SHA-1, 6 digits, 30 s, ±1 step, server time only) with the guards around
/// them: each accepted time step is remembered per user (in MariaDB, and in Redis for older nodes)
/// so a code works once on any node, failures are counted per account and per challenge, and recovery codes are single use.
/// Redis errors propagate (503): the guards fail closed.
/// </summary>
public sealed class Totp(Envelope envelope, EntropyMixer mixer, RedisCircuit redis, TimeProvider time, GuardOptions options, MasterKeys masterKeys)
{
    public const string SecretPurpose = "totp-secret";
    const string Base32 = "abcdefghijklmnopqrstuvwxyz234567";
    static readonly VerificationWindow OneStep = new(previous: 1, future: 1);

    // Accepts a step only if it is later than the last one accepted for this user.
    const string AcceptStep = """
        local last = tonumber(redis.call('GET', KEYS[1]) or '-1')
        if tonumber(ARGV[1]) <= last then return 0 end
        redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
        return 1
        """;

    // KEYS: the account's counter, then (at sign-in) the challenge's; ARGV[i*2-1]: that counter's
    // window ms, ARGV[i*2]: its limit. Counts the attempt in every counter, or (when one is already
    // spent) in none. Returns the ms until the account's counter resets when it is spent, -1 when
    // only the challenge's is, else 0.
    const string Acquire = """
        local account, challenge = 0, false
        for i, key in ipairs(KEYS) do
            local n = redis.call('INCR', key)
            if n == 1 then redis.call('PEXPIRE', key, ARGV[i * 2 - 1]) end
            if n > tonumber(ARGV[i * 2]) then
                if i == 1 then account = math.max(redis.call('PTTL', key), 1) else challenge = true end
            end
        end
        if account > 0 or challenge then
            for _, key in ipairs(KEYS) do redis.call('DECR', key) end
        end
        if account > 0 then return account end
        if challenge then return -1 end
        return 0
        """;

    public static bool IsTotpCode(string code) => code.Length == 6 && code.All(char.IsAsciiDigit);

    /// <summary>"ABCD-efgh ijkl" → "abcdefghijkl", or null when it cannot be a recovery code.</summary>
    public static string? NormalizeRecoveryCode(string code)
    {
        var normalized = new string(code.Where(c => c is not ('-' or ' ')).Select(char.ToLowerInvariant).ToArray());
        return normalized.Length == 12 && normalized.All(c => Base32.Contains(c)) ? normalized : null;
    }

    public byte[] NewSecret()
    {
        var secret = new byte[20];   // 160 bits, RFC 4226's recommendation
        mixer.Fill(secret, "ams/totp-secret/v1"u8);
        return secret;
    }

    public static string[] SealedFields(long userId) => [userId.ToString(System.Globalization.CultureInfo.InvariantCulture)];

    public async Task<byte[]?> SecretAsync(MySqlConnection connection, long userId) =>
        await Sql.SecretAsync(connection, userId) is { } sealedSecret
            ? await envelope.OpenAsync(sealedSecret, SecretPurpose, SealedFields(userId))
            : null;

    /// <summary>What counting an attempt found: go on, wait (the account's budget is spent), or start over (the challenge's is).</summary>
    public readonly record struct Attempt(TimeSpan? Wait, bool ChallengeSpent);

    /// <summary>
    /// Counts an attempt at a secret (a code, or a password with a code) against the account and,
    /// for the login step, the challenge, atomically and before anything is checked: however many
    /// requests arrive at once, at most the limits are ever verified. When either budget is spent
    /// the attempt is not counted, and the account's comes first: its wait is worth telling (any
    /// challenge meets it), while a spent challenge is dead for good, so waiting would not help
    /// (a new sign-in makes a new one). A success clears the account's count
    /// (<see cref="ResetAsync"/>); a failure stays counted.
    /// </summary>
    public async Task<Attempt> TryAttemptAsync(HttpContext http, long userId, string? challengeId)
    {
        // Once per request, however often a conflict runs it (ConflictRetry.FirstCount).
        if (!ConflictRetry.FirstCount(http, "totp")) return default;
        var window = (long)options.Window.TotalMilliseconds;
        var (keys, args) = challengeId is null
            ? (new RedisKey[] { AccountKey(userId) }, new RedisValue[] { window, options.MaxFailuresPerAccount })
            : ([AccountKey(userId), ChallengeKey(userId, challengeId)],
               [window, options.MaxFailuresPerAccount, (long)Challenges.Lifetime.TotalMilliseconds, options.MaxFailuresPerChallenge]);
        var found = (long)await redis.CallAsync(keys[0], db => db.ScriptEvaluateAsync(Acquire, keys, args));
        return found > 0 ? new(TimeSpan.FromMilliseconds(found), false) : new(null, found < 0);
    }

    public Task ResetAsync(long userId) => redis.CallAsync(AccountKey(userId), db => db.KeyDeleteAsync(AccountKey(userId)));

    /// <summary>A current TOTP code for this secret that this user has not used before.</summary>
    public async Task<bool> VerifyTotpAsync(MySqlConnection connection, long userId, byte[] secret, string code)
    {
        if (!IsTotpCode(code)) return false;
        if (!new OtpNet.Totp(secret).VerifyTotp(time.GetUtcNow().UtcDateTime, code, out var step, OneStep)) return false;
        // MariaDB keeps the step durably; Redis's copy is what nodes of 0.15 read, so a code used on
        // one of them during a rolling update is refused here too.
        if (!await Sql.TakeStepAsync(connection, userId, step)) return false;
        return (long)await redis.CallAsync($"{Redis.KeyPrefix}totp-step:{userId}", db => db.ScriptEvaluateAsync(AcceptStep, [$"{Redis.KeyPrefix}totp-step:{userId}"],
            [step, (long)TimeSpan.FromMinutes(5).TotalMilliseconds])) == 1;
    }

    public enum Verdict { Wrong, Right, Unclaimed }

    /// <summary>
    /// A TOTP code, or an unused recovery code (which is used up). <paramref name="claim"/>, when
    /// given, runs once the code is known to be right and before a recovery code is used up, and a
    /// false from it is <see cref="Verdict.Unclaimed"/>: a sign-in redeems its challenge there, so
    /// of two recovery codes sent at once on one challenge the one that loses stays unused (both
    /// were used up, one signing in).
    /// </summary>
    public async Task<Verdict> VerifySecondFactorAsync(MySqlConnection connection, long userId, byte[] secret, string code, Func<Task<bool>>? claim = null)
    {
        if (IsTotpCode(code))
        {
            if (!await VerifyTotpAsync(connection, userId, secret, code)) return Verdict.Wrong;
            return claim is null || await claim() ? Verdict.Right : Verdict.Unclaimed;
        }
        if (NormalizeRecoveryCode(code) is not { } recovery) return Verdict.Wrong;
        string? stored = null;
        await foreach (var key in RecoveryCodeKeys.AllAsync(connection, envelope, masterKeys))
            if (KeyedHash(key, userId, recovery) is var hash && await Sql.HasRecoveryCodeAsync(connection, userId, hash))
            {
                stored = hash;
                break;
            }
        // Codes made before v2: unkeyed SHA-256, working until used or replaced.
        var legacy = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes($"ams/recovery/v1|{userId}|{recovery}")));
        if (stored is null && await Sql.HasRecoveryCodeAsync(connection, userId, legacy)) stored = legacy;
        if (stored is null) return Verdict.Wrong;
        if (claim is not null && !await claim()) return Verdict.Unclaimed;
        // Used up by exactly one caller, whatever raced it.
        return await Sql.UseRecoveryCodeAsync(connection, userId, stored) ? Verdict.Right : Verdict.Wrong;
    }

    /// <summary>Ten codes of 60 random bits each, shown once as xxxx-xxxx-xxxx; only their hashes are kept.</summary>
    public (List<string> Codes, List<string> Hashes) NewRecoveryCodes(long userId)
    {
        var codes = new List<string>();
        Span<byte> random = stackalloc byte[12];
        for (var i = 0; i < 10; i++)
        {
            mixer.Fill(random, "ams/recovery-code/v1"u8);
            var chars = new char[12];
            for (var j = 0; j < 12; j++) chars[j] = Base32[random[j] & 31];   // 5 bits from each byte
            var code = new string(chars);
            codes.Add($"{code[..4]}-{code[4..8]}-{code[8..]}");
        }
        var key = RecoveryCodeKeys.Derive(masterKeys.Primary);
        return (codes, codes.Select(c => KeyedHash(key, userId, NormalizeRecoveryCode(c)!)).ToList());
    }

    /// <summary>
    /// HMAC-SHA256 under a key derived from a master key (<see cref="RecoveryCodeKeys"/>): a stolen
    /// table alone cannot be searched for the 60-bit codes without the master key.
    /// </summary>
    static string KeyedHash(byte[] key, long userId, string normalized) =>
        Convert.ToHexStringLower(HMACSHA256.HashData(key, Encoding.UTF8.GetBytes($"ams/recovery/v2|{userId}|{normalized}")));

    public static string Base32Secret(byte[] secret) => Base32Encoding.ToString(secret).TrimEnd('=');

    // The user's id as the hash tag: Acquire counts the account and the challenge together, and a
    // Redis Cluster runs a script only on keys of one slot.
    static string AccountKey(long userId) => $"{Redis.KeyPrefix}2fa-failures:user:{{{userId}}}";
    static string ChallengeKey(long userId, string challengeId) => $"{Redis.KeyPrefix}2fa-failures:challenge:{{{userId}}}:{challengeId}";
}
