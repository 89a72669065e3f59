using System.Collections.Concurrent;
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
/// <para>
/// A send far below the limit does not wait for Redis: the round trip (0.4 ms at the median,
/// 3 ms at p99 under load) sat on the path of every message. Each node remembers what Redis last
/// counted for the user in the current window. While that count is under half the limit and no
/// count of this node's is unanswered, the send goes on and Redis counts it meanwhile. Every count
/// is sent while the decision's lock is held, so this node's counts reach Redis in the order it
/// decided them: on one node a send that does not wait is counted before any send after it, and
/// the half-limit margin holds, so one node is exact. With several nodes, another node's sends can
/// take the count past the limit before this node hears of it: this node then lets through one
/// send too many, hears the count, and waits for Redis until the window ends. At most one send
/// more per node and window while Redis answers; after a count that Redis did not answer (it may
/// still have counted it) the node waits for the next one.
/// </para>
/// </summary>
public sealed class Throttle(RedisCircuit circuit, SendLimits options, TimeProvider time, ILogger<Throttle> logger)
{
    // Returns the count and the milliseconds until the window ends.
    const string Count = """
        local n = redis.call('INCR', KEYS[1])
        if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
        return {n, redis.call('PTTL', KEYS[1])}
        """;

    /// <summary>What Redis last counted for one user in the window it reported (ends on this node's monotonic clock), and this node's counts it has not answered yet.</summary>
    sealed class Budget
    {
        public long Counted;
        public long WindowEndsMs;
        public int Unanswered;
    }

    readonly ConcurrentDictionary<long, Budget> budgets = new();
    long nextSweepMs;

    /// <summary>Users this node remembers a count for (those who sent within about two windows).</summary>
    internal int Remembered => budgets.Count;

    /// <summary>Counts a send, once per request however often a conflict runs it (<see cref="ConflictRetry.FirstCount"/>); how long to wait when the budget is spent.</summary>
    public async Task<TimeSpan?> TrySendAsync(HttpContext http, long userId)
    {
        if (!ConflictRetry.FirstCount(http, "sends")) return null;
        SweepIfDue();
        var budget = budgets.GetOrAdd(userId, static _ => new Budget());
        Task<(long Count, long UntilResetMs)> counted;
        bool wait;
        lock (budget)
        {
            wait = NowMs() >= budget.WindowEndsMs || budget.Unanswered > 0 || budget.Counted * 2 >= options.MaxSends;
            budget.Unanswered++;
            counted = CountAsync(userId, budget);
        }
        if (!wait)
        {
            _ = ObserveAsync(counted);
            return null;
        }
        var (n, untilReset) = await counted;
        return n > options.MaxSends && untilReset > 0 ? TimeSpan.FromMilliseconds(untilReset) : null;
    }

    async Task<(long Count, long UntilResetMs)> CountAsync(long userId, Budget budget)
    {
        (long Count, long UntilResetMs)? reply = null;
        try
        {
            var result = (RedisResult[])(await circuit.CallAsync($"{Redis.KeyPrefix}sends:{userId}", db => db.ScriptEvaluateAsync(Count, [$"{Redis.KeyPrefix}sends:{userId}"],
                [(long)options.Window.TotalMilliseconds])))!;
            reply = ((long)result[0], (long)result[1]);
            return reply.Value;
        }
        catch (Exception e) when (e is RedisException or TimeoutException)
        {
            return (0, 0);
        }
        finally
        {
            var now = NowMs();
            lock (budget)
            {
                budget.Unanswered--;
                // No answer: Redis may have counted it all the same, so the next send waits for a count.
                if (reply is not { } r) budget.WindowEndsMs = 0;
                // Replies may overtake each other; a window that ended starts over from this one.
                else if (now >= budget.WindowEndsMs) (budget.Counted, budget.WindowEndsMs) = (r.Count, r.UntilResetMs > 0 ? now + r.UntilResetMs : 0);
                else budget.Counted = Math.Max(budget.Counted, r.Count);
            }
        }
    }

    /// <summary>A count nobody waits for: a fault other than Redis's (a bug) is logged rather than lost.</summary>
    async Task ObserveAsync(Task counted)
    {
        try
        {
            await counted;
        }
        catch (Exception e)
        {
            logger.LogError(e, "Counting a send against the throttle failed");
        }
    }

    /// <summary>Forgets users whose window ended a window ago, once a window, so the map holds only recent senders.</summary>
    void SweepIfDue()
    {
        var (now, due) = (NowMs(), Interlocked.Read(ref nextSweepMs));
        var window = (long)options.Window.TotalMilliseconds;
        if (now < due || Interlocked.CompareExchange(ref nextSweepMs, now + window, due) != due) return;
        foreach (var (userId, budget) in budgets)
            lock (budget)
                // Under the budget's lock, which a send's decision holds too: a send that found this
                // budget before it was removed decides after, on a window long gone, and waits.
                if (budget.Unanswered == 0 && NowMs() >= budget.WindowEndsMs + window) budgets.TryRemove(new KeyValuePair<long, Budget>(userId, budget));
    }

    // Monotonic: the windows are Redis's time-to-live, relative, so a wall-clock step must not stretch or end them.
    long NowMs() => time.GetTimestamp() * 1000 / time.TimestampFrequency;
}
