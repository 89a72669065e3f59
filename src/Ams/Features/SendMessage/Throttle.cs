using Ams.Infrastructure;
using StackExchange.Redis;

namespace Ams.Features.SendMessage;

public sealed class SendLimits
{
    public int MaxSends { get; set; } = 60;
    public TimeSpan Window { get; set; } = TimeSpan.FromSeconds(10);
}

/// <summary>
/// Sends per user per window, counted in Redis so the limit holds across nodes. If Redis is
/// down, sending still works (messages are durable in MariaDB); only the limit lapses.
/// </summary>
public sealed class Throttle(RedisCircuit circuit, SendLimits options)
{
    const string Count = """
        local n = redis.call('INCR', KEYS[1])
        if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
        if n > tonumber(ARGV[2]) then return redis.call('PTTL', KEYS[1]) end
        return 0
        """;

    /// <summary>Counts a send, once per request however often a conflict runs it (<see cref="ConflictRetry.FirstCount"/>); how long to wait when the budget is spent.</summary>
    public async Task<TimeSpan?> TrySendAsync(HttpContext http, long userId)
    {
        if (!ConflictRetry.FirstCount(http, "sends")) return null;
        try
        {
            var wait = (long)await circuit.CallAsync(db => db.ScriptEvaluateAsync(Count, [$"{Redis.KeyPrefix}sends:{userId}"],
                [(long)options.Window.TotalMilliseconds, options.MaxSends]));
            return wait > 0 ? TimeSpan.FromMilliseconds(wait) : null;
        }
        catch (Exception e) when (e is RedisException or TimeoutException)
        {
            return null;
        }
    }
}
