using System.Diagnostics;
using System.Security.Cryptography;
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
/// them. A password is checked only while the failures counted plus the attempts still being
/// checked stay under a budget, so a burst of parallel guesses cannot slip past the limit; an
/// attempt beyond that waits for those ahead of it rather than failing, so the owner's parallel
/// sign-ins (a script's, or two tabs') all get through. The account is named by
/// <see cref="AccountOf"/>: its id once found, so every spelling MariaDB matches to it (case,
/// trailing spaces) shares one budget. A known device (see <see cref="Devices"/>) has its own
/// budget instead of the account's and the address's.
/// </summary>
public sealed class Throttle(RedisCircuit redis, ThrottleOptions options)
{
    /// <summary>The API's 429 wherever a password is checked against this throttle (sign-in, password change, 2FA setup).</summary>
    public static Task TooManyAsync(HttpContext http, TimeSpan retryAfter) =>
        Problem.WriteAsync(http, StatusCodes.Status429TooManyRequests, "Too many failed sign-ins", "Wait before trying again.", retryAfter);

    /// <summary>
    /// How long an attempt stays counted as being checked if its node dies before it is settled:
    /// longer than any check takes (a hashing slot is waited for 60 s at most).
    /// </summary>
    public static readonly TimeSpan PendingLifetime = TimeSpan.FromMinutes(2);

    /// <summary>How long an attempt waits for those ahead of it before it gets 503 "Server busy".</summary>
    public static readonly TimeSpan MostQueued = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Attempts one node lets wait at once; past it, 503 "Server busy" at once. Each waiter asks
    /// Redis again and again, all on the one slot every login key shares: a review counted 2,500
    /// sign-ins at once with one's own password as enough to crowd out every other Redis call.
    /// </summary>
    public const int MostWaiting = 256;

    int waiting;

    // KEYS: n failure counters, then their n sets of attempts being checked (scored by when they
    // lapse), then the attempt's tombstone; ARGV[1]: this attempt; ARGV[2]: its lifetime ms;
    // ARGV[2 + i]: counter i's limit. Returns the ms until the fullest spent counter resets, -1
    // while attempts being checked fill what is left of a budget, 0 once this attempt is among
    // those being checked, or -2 for an attempt its node gave up on (it ran late, see Forget).
    const string Acquire = """
        if redis.call('EXISTS', KEYS[#KEYS]) == 1 then return -2 end
        local n = (#KEYS - 1) / 2
        local clock = redis.call('TIME')
        local now = clock[1] * 1000 + math.floor(clock[2] / 1000)
        local wait, full = 0, false
        for i = 1, n do
            local failures = tonumber(redis.call('GET', KEYS[i]) or '0')
            local limit = tonumber(ARGV[i + 2])
            if failures >= limit then
                local ttl = redis.call('PTTL', KEYS[i])
                wait = math.max(wait, ttl > 0 and ttl or 1)
            else
                redis.call('ZREMRANGEBYSCORE', KEYS[n + i], '-inf', now)
                if failures + redis.call('ZCARD', KEYS[n + i]) >= limit then full = true end
            end
        end
        if wait > 0 then return wait end
        if full then return -1 end
        for i = 1, n do
            redis.call('ZADD', KEYS[n + i], now + tonumber(ARGV[2]), ARGV[1])
            redis.call('PEXPIRE', KEYS[n + i], ARGV[2])
        end
        return 0
        """;

    // KEYS as for Acquire; ARGV[1]: the attempt; ARGV[2]: the window ms; ARGV[3]: how long its
    // tombstone stays, or 0 for none; ARGV[3 + i]: what its end does to counter i: 'count' (a
    // failure), 'clear' (a right password cleans the slate) or 'keep'. Only an attempt still being
    // checked is settled, so settling twice does nothing more.
    const string Settle = """
        local n = (#KEYS - 1) / 2
        for i = 1, n do
            if redis.call('ZREM', KEYS[n + i], ARGV[1]) == 1 then
                local what = ARGV[i + 3]
                if what == 'count' then
                    if redis.call('INCR', KEYS[i]) == 1 then redis.call('PEXPIRE', KEYS[i], ARGV[2]) end
                elseif what == 'clear' then
                    redis.call('DEL', KEYS[i])
                end
            end
        end
        if tonumber(ARGV[3]) > 0 then redis.call('SET', KEYS[#KEYS], 1, 'PX', ARGV[3]) end
        return 0
        """;

    /// <summary>An attempt being checked: its keys (see Acquire), and what a right password does to each counter.</summary>
    sealed record Pending(RedisKey[] Keys, RedisValue Id, RedisValue[] OnSuccess)
    {
        public RedisValue[] Failed => [.. OnSuccess.Select(_ => (RedisValue)"count")];
        public RedisValue[] Unjudged => [.. OnSuccess.Select(_ => (RedisValue)"keep")];
    }

    static readonly object AdmittedItem = new();

    /// <summary>
    /// The throttling name of an account: its id when it exists, else the typed name as MariaDB's
    /// case-insensitive, trailing-space-blind collation would compare it.
    /// </summary>
    public static string AccountOf(UserRow? user, string typed) =>
        user is not null ? $"id:{user.Id}" : $"name:{typed.TrimEnd(' ').ToLowerInvariant()}";

    /// <summary>
    /// Admits an attempt against the account's and the address's budgets, waiting (up to
    /// <see cref="MostQueued"/>) while attempts being checked fill them; how long to wait when a
    /// budget is spent, else null. A right password clears the account's failures; the address
    /// keeps its own, which belong to other accounts.
    /// </summary>
    public Task<TimeSpan?> TryAttemptAsync(HttpContext http, string account, string address) =>
        AdmitAsync(http, Attempt([("account", account), ("addr", address)], ["clear", "keep"]), [options.MaxFailuresPerAccount, options.MaxFailuresPerAddress]);

    /// <summary><see cref="TryAttemptAsync"/> for a known device: against that device's budget alone.</summary>
    public Task<TimeSpan?> TryDeviceAttemptAsync(HttpContext http, string deviceId) =>
        AdmitAsync(http, Attempt([("device", deviceId)], ["clear"]), [options.MaxFailuresPerDevice]);

    static Pending Attempt((string Kind, string Name)[] budgets, RedisValue[] onSuccess)
    {
        var id = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));
        return new([.. budgets.Select(b => FailuresKey(b.Kind, b.Name)), .. budgets.Select(b => PendingKey(b.Kind, b.Name)), TombstoneKey(id)], id, onSuccess);
    }

    async Task<TimeSpan?> AdmitAsync(HttpContext http, Pending attempt, RedisValue[] limits)
    {
        // A run of the same request after a conflict (ConflictRetry) was admitted by the first run.
        if (http.Items.ContainsKey(AdmittedItem)) return null;
        var queued = Stopwatch.GetTimestamp();
        var pause = TimeSpan.FromMilliseconds(20);
        var waits = false;
        try
        {
            while (true)
            {
                // Refused up front (the circuit knows Redis is not answering), a call was never sent.
                var sent = !redis.IsOpenFor(attempt.Keys[0]);
                long found;
                try
                {
                    found = (long)await redis.CallAsync(attempt.Keys[0], db => db.ScriptEvaluateAsync(Acquire, attempt.Keys,
                        [attempt.Id, (long)PendingLifetime.TotalMilliseconds, .. limits]));
                }
                catch (Exception e) when (sent && e is RedisException or TimeoutException)
                {
                    // Unanswered is not undone: a paused Redis runs the script when it resumes, long after
                    // this request got its 503, and the attempt would then hold a place until it lapsed
                    // (an outside check saw a 5 s pause keep an account from signing in for 2 minutes).
                    Forget(attempt);
                    throw;
                }
                if (found > 0) return TimeSpan.FromMilliseconds(found);
                if (found == 0)
                {
                    http.Items[AdmittedItem] = attempt;
                    return null;
                }
                if (!waits)
                {
                    waits = true;
                    if (Interlocked.Increment(ref waiting) > MostWaiting) throw Busy();
                }
                if (Stopwatch.GetElapsedTime(queued) >= MostQueued) throw Busy();
                // Those ahead take a password hash each, tens of milliseconds; a long wait asks less often.
                await Task.Delay(pause * (0.5 + Random.Shared.NextDouble()), http.RequestAborted);
                pause = TimeSpan.FromMilliseconds(Math.Min(pause.TotalMilliseconds * 2, 500));
            }
        }
        finally
        {
            if (waits) Interlocked.Decrement(ref waiting);
        }
    }

    static PasswordHashingBusyException Busy()
    {
        AmsMetrics.PasswordChecksRefused.Add(1);
        return new PasswordHashingBusyException();
    }

    /// <summary>
    /// <paramref name="check"/>, the password check of the attempt this request was admitted for,
    /// settled by its verdict: a failure counts, a right password clears what it clears. When no
    /// verdict comes (no hashing slot freed up in time, the client went away) nothing is counted:
    /// an outside check saw a burst of correct sign-ins answered "busy" lock their accounts for the
    /// window, and their address with them.
    /// </summary>
    public async Task<bool> CheckAsync(HttpContext http, Func<Task<bool>> check)
    {
        var attempt = (Pending)http.Items[AdmittedItem]!;
        bool right;
        try
        {
            right = await check();
        }
        catch
        {
            await SettleAsync(attempt, attempt.Unjudged, tombstone: false);
            throw;
        }
        await SettleAsync(attempt, right ? attempt.OnSuccess : attempt.Failed, tombstone: false);
        return right;
    }

    /// <summary>
    /// Settles an attempt, and when Redis does not answer, again in the background until it does:
    /// the verdict stands meanwhile (its place still counts against the budget, so no guess slips
    /// in), and the attempt does not hold that place until it lapses.
    /// </summary>
    async Task SettleAsync(Pending attempt, RedisValue[] outcome, bool tombstone)
    {
        try
        {
            await SettleOnceAsync(attempt, outcome, tombstone);
        }
        catch (Exception e) when (e is RedisException or TimeoutException)
        {
            _ = SettleLaterAsync(attempt, outcome, tombstone);
        }
    }

    /// <summary>An attempt whose admission went unanswered: undone whenever its script runs, before or after this.</summary>
    void Forget(Pending attempt) => _ = SettleLaterAsync(attempt, attempt.Unjudged, tombstone: true);

    async Task SettleLaterAsync(Pending attempt, RedisValue[] outcome, bool tombstone)
    {
        var since = Stopwatch.GetTimestamp();
        while (Stopwatch.GetElapsedTime(since) < PendingLifetime)
        {
            try
            {
                await SettleOnceAsync(attempt, outcome, tombstone);
                return;
            }
            catch (Exception e) when (e is RedisException or TimeoutException)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(Random.Shared.Next(250, 750)));
            }
        }
    }

    Task SettleOnceAsync(Pending attempt, RedisValue[] outcome, bool tombstone) =>
        redis.CallAsync(attempt.Keys[0], db => db.ScriptEvaluateAsync(Settle, attempt.Keys,
            [attempt.Id, (long)options.Window.TotalMilliseconds, tombstone ? (long)PendingLifetime.TotalMilliseconds : 0, .. outcome]));

    // One hash tag for every login key: a script counts an account and an address together, and a
    // Redis Cluster runs a script only on keys of one slot. Sign-ins are too rare to crowd it. The
    // sets of attempts being checked have a prefix of their own: a typed name may end in anything.
    static RedisKey FailuresKey(string kind, string name) => $"{Redis.KeyPrefix}login-failures:{{login}}:{kind}:{name}";
    static RedisKey PendingKey(string kind, string name) => $"{Redis.KeyPrefix}login-checking:{{login}}:{kind}:{name}";
    static RedisKey TombstoneKey(string attemptId) => $"{Redis.KeyPrefix}login-forgotten:{{login}}:{attemptId}";
}
