using Ams.Infrastructure;
using StackExchange.Redis;

namespace Ams.Features.Login;

public sealed class ThrottleOptions
{
    public int MaxFailuresPerAccount { get; set; } = 5;
    public int MaxFailuresPerAddress { get; set; } = 30;
    public TimeSpan Window { get; set; } = TimeSpan.FromMinutes(15);
}

/// <summary>
/// Failed-login budgets per account and per client address, in Redis so every node shares
/// them. An attempt is counted before the password is checked (and forgiven on success), so a
/// burst of parallel guesses cannot all slip in under the limit.
/// </summary>
public sealed class Throttle(IConnectionMultiplexer redis, ThrottleOptions options)
{
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

    /// <summary>Counts an attempt; returns how long to wait when a budget is spent.</summary>
    public async Task<TimeSpan?> TryAttemptAsync(string username, string address)
    {
        var wait = (long)await redis.GetDatabase().ScriptEvaluateAsync(Acquire,
            [AccountKey(username), AddressKey(address)],
            [(long)options.Window.TotalMilliseconds, options.MaxFailuresPerAccount, options.MaxFailuresPerAddress]);
        return wait > 0 ? TimeSpan.FromMilliseconds(wait) : null;
    }

    /// <summary>A correct password: the attempt was not a failure, and the account's slate is clean.</summary>
    public async Task ForgiveAsync(string username, string address)
    {
        var db = redis.GetDatabase();
        await db.KeyDeleteAsync(AccountKey(username));
        await db.StringDecrementAsync(AddressKey(address));
    }

    static string AccountKey(string username) => $"{Redis.KeyPrefix}login-failures:user:{username}";
    static string AddressKey(string address) => $"{Redis.KeyPrefix}login-failures:addr:{address}";
}
