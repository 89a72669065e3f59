using Ams.Infrastructure;
using StackExchange.Redis;

namespace Ams.Features.Login;

public sealed class ThrottleOptions
{
    public int MaxFailuresPerAccount { get; set; } = 5;
    public int MaxFailuresPerAddress { get; set; } = 30;
    /// <summary>Failures a known device (one holding a device token for the account) may make before it is throttled too.</summary>
    public int MaxFailuresPerDevice { get; set; } = 5;
    public TimeSpan Window { get; set; } = TimeSpan.FromMinutes(15);
}

/// <summary>
/// Failed-login budgets per account and per client address, in Redis so every node shares
/// them. An attempt is counted before the password is checked (and forgiven on success), so a
/// burst of parallel guesses cannot all slip in under the limit. The account is named by
/// <see cref="AccountOf"/>: its id once found, so every spelling MariaDB matches to it (case,
/// trailing spaces) shares one budget. A known device (see <see cref="Devices"/>) has its own
/// budget instead of the account's and the address's.
/// </summary>
public sealed class Throttle(RedisCircuit redis, ThrottleOptions options)
{
    /// <summary>The API's 429 wherever a password is checked against this throttle (sign-in, password change, 2FA setup).</summary>
    public static Task TooManyAsync(HttpContext http, TimeSpan retryAfter) =>
        Problem.WriteAsync(http, StatusCodes.Status429TooManyRequests, "Too many failed sign-ins", "Wait before trying again.", retryAfter);

    // KEYS: counters; ARGV[1]: window ms; ARGV[2..]: limits. Returns 0, or the ms until the
    // fullest exceeded counter resets (that attempt is not counted).
    const string Acquire = """
        local wait = 0
        for i, key in ipairs(KEYS) do
            local n = redis.call('INCR', key)
            if n == 1 then redis.call('PEXPIRE', key, ARGV[1]) end
            if n > tonumber(ARGV[i + 1]) then
                wait = math.max(wait, redis.call('PTTL', key))
            end
        end
        if wait > 0 then
            for _, key in ipairs(KEYS) do redis.call('DECR', key) end
        end
        return wait
        """;

    // KEYS: the counters an attempt counted. Gives it back, never below zero nor to a counter that
    // expired meanwhile.
    const string GiveBack = """
        for _, key in ipairs(KEYS) do
            if tonumber(redis.call('GET', key) or '0') > 0 then redis.call('DECR', key) end
        end
        return 0
        """;

    /// <summary>
    /// The throttling name of an account: its id when it exists, else the typed name as MariaDB's
    /// case-insensitive, trailing-space-blind collation would compare it.
    /// </summary>
    public static string AccountOf(UserRow? user, string typed) =>
        user is not null ? $"id:{user.Id}" : $"name:{typed.TrimEnd(' ').ToLowerInvariant()}";

    /// <summary>Counts an attempt (once per request, see <see cref="ConflictRetry.FirstCount"/>); returns how long to wait when a budget is spent.</summary>
    public async Task<TimeSpan?> TryAttemptAsync(HttpContext http, string account, string address)
    {
        if (!ConflictRetry.FirstCount(http, "password")) return null;
        var wait = (long)await redis.CallAsync(AccountKey(account), db => db.ScriptEvaluateAsync(Acquire,
            [AccountKey(account), AddressKey(address)],
            [(long)options.Window.TotalMilliseconds, options.MaxFailuresPerAccount, options.MaxFailuresPerAddress]));
        return wait > 0 ? TimeSpan.FromMilliseconds(wait) : null;
    }

    /// <summary>Counts an attempt from a known device against that device's budget alone.</summary>
    public async Task<TimeSpan?> TryDeviceAttemptAsync(HttpContext http, string deviceId)
    {
        if (!ConflictRetry.FirstCount(http, "password")) return null;
        var wait = (long)await redis.CallAsync(DeviceKey(deviceId), db => db.ScriptEvaluateAsync(Acquire,
            [DeviceKey(deviceId)], [(long)options.Window.TotalMilliseconds, options.MaxFailuresPerDevice]));
        return wait > 0 ? TimeSpan.FromMilliseconds(wait) : null;
    }

    /// <summary>
    /// <paramref name="check"/>, the password check of an attempt <see cref="TryAttemptAsync"/> counted.
    /// When no hashing slot frees up in time (503), no password was checked: the attempt is given back
    /// rather than left to count as a failure (an outside check saw a burst of correct sign-ins
    /// answered "busy" lock their accounts for the window, and their address with them).
    /// </summary>
    public Task<bool> CheckAsync(Func<Task<bool>> check, string account, string address) =>
        GivenBackWhenBusyAsync(check, [AccountKey(account), AddressKey(address)]);

    /// <summary><see cref="CheckAsync"/> for an attempt counted by <see cref="TryDeviceAttemptAsync"/>.</summary>
    public Task<bool> CheckOnDeviceAsync(Func<Task<bool>> check, string deviceId) => GivenBackWhenBusyAsync(check, [DeviceKey(deviceId)]);

    async Task<bool> GivenBackWhenBusyAsync(Func<Task<bool>> check, RedisKey[] counted)
    {
        try
        {
            return await check();
        }
        catch (PasswordHashingBusyException)
        {
            try
            {
                await redis.CallAsync(counted[0], db => db.ScriptEvaluateAsync(GiveBack, counted));
            }
            catch (Exception e) when (e is RedisException or TimeoutException)
            {
                // Counted for the window, then: as when Redis fails between counting and forgiving.
            }
            throw;
        }
    }

    /// <summary>A correct password: the attempt was not a failure, and the account's slate is clean.</summary>
    public Task ForgiveAsync(string account, string address) => redis.CallAsync(AccountKey(account), async db =>
    {
        await db.KeyDeleteAsync(AccountKey(account));
        await db.StringDecrementAsync(AddressKey(address));
    });

    /// <summary>
    /// A correct password from a known device: only the device's slate is cleaned. The account's
    /// count stays, so strangers' guesses stay throttled while the owner signs in.
    /// </summary>
    public Task ForgiveDeviceAsync(string deviceId) => redis.CallAsync(DeviceKey(deviceId), db => db.KeyDeleteAsync(DeviceKey(deviceId)));

    // One hash tag for every login counter: Acquire counts an account and an address together, and
    // a Redis Cluster runs a script only on keys of one slot. Sign-ins are too rare to crowd it.
    static string AccountKey(string account) => $"{Redis.KeyPrefix}login-failures:{{login}}:account:{account}";
    static string DeviceKey(string deviceId) => $"{Redis.KeyPrefix}login-failures:{{login}}:device:{deviceId}";
    static string AddressKey(string address) => $"{Redis.KeyPrefix}login-failures:{{login}}:addr:{address}";
}
