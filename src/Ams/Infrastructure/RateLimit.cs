namespace Ams.Infrastructure;

/// <summary>
/// A fixed-window counter in Redis, shared by every node. The call is counted atomically before
/// the work it guards, so a burst of parallel requests cannot all pass a check made before any
/// of them was counted. Refused calls are not counted.
/// </summary>
public static class RateLimit
{
    const string Acquire = """
        local n = redis.call('INCR', KEYS[1])
        if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
        if n > tonumber(ARGV[2]) then
            redis.call('DECR', KEYS[1])
            local ttl = redis.call('PTTL', KEYS[1])
            if ttl < 1 then return 1 end
            return ttl
        end
        return 0
        """;

    /// <summary>
    /// Counts one call against <paramref name="key"/>, once per request however often a conflict
    /// runs it (<see cref="ConflictRetry.FirstCount"/>); how long to wait when the window's budget is spent, else null.
    /// </summary>
    public static async Task<TimeSpan?> TryAcquireAsync(HttpContext http, RedisCircuit redis, string key, int limit, TimeSpan window)
    {
        if (!ConflictRetry.FirstCount(http, key)) return null;
        var wait = (long)await redis.CallAsync($"{Redis.KeyPrefix}{key}", db => db.ScriptEvaluateAsync(Acquire, [$"{Redis.KeyPrefix}{key}"],
            [(long)window.TotalMilliseconds, limit]));
        return wait > 0 ? TimeSpan.FromMilliseconds(wait) : null;
    }
}
