using System.Threading.Channels;
using Ams.Infrastructure;
using Ams.Tests.Support;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;

namespace Ams.Tests.Platform;

/// <summary>The loop every background sweep runs in (BackgroundSweep).</summary>
public sealed class BackgroundSweepTests
{
    static readonly TimeSpan Interval = TimeSpan.FromHours(1);

    sealed class TestSweep(TimeProvider time, ILogger logger, Action job, long deletes = 0) : BackgroundSweep(Interval, "Test sweep", time, logger)
    {
        public override Task<long> SweepAsync(CancellationToken ct = default)
        {
            job();
            return Task.FromResult(deletes);
        }
    }

    [Fact]
    public async Task A_run_that_deletes_says_how_many_in_one_line_and_one_that_deletes_nothing_is_silent()
    {
        foreach (var deletes in new long[] { 0, 3 })
        {
            var time = new Clock();
            var logs = new CapturedLogs();
            var runs = Channel.CreateUnbounded<DateTimeOffset>();
            using var sweep = new TestSweep(time, logs.CreateLogger("test"), () => runs.Writer.TryWrite(time.GetUtcNow()), deletes);
            await sweep.StartAsync(CancellationToken.None);
            Assert.NotNull(await RunsWithinAsync(time, runs.Reader, Interval));
            await sweep.StopAsync(CancellationToken.None);
            Assert.Equal(deletes == 0 ? [] : ["Information test: Test sweep: 3 deleted"], logs.Lines);
        }
    }

    /// <summary>
    /// A fake clock that counts the delays set on it and those that fired, so a test can tell a run
    /// to come from no run without guessing how long the loop's thread-pool continuations take.
    /// </summary>
    sealed class Clock : FakeTimeProvider
    {
        int set, fired;
        public int Set => Volatile.Read(ref set);
        public int Fired => Volatile.Read(ref fired);

        public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
        {
            var timer = base.CreateTimer(s => { Interlocked.Increment(ref fired); callback(s); }, state, dueTime, period);
            Interlocked.Increment(ref set);
            return timer;
        }

        /// <summary>Waits (in real time, at most 10 s) until the loop has set <paramref name="count"/> delays in all.</summary>
        public async Task WaitForDelaysAsync(int count)
        {
            for (var waited = 0; Set < count && waited < 2000; waited++) await Task.Delay(5);
            Assert.True(Set >= count, $"the loop set {Set} delays, not {count}");
        }
    }

    /// <summary>
    /// Moves the fake clock on in steps until the job has run once more (how long after the call),
    /// or <paramref name="most"/> has passed (null).
    /// </summary>
    static async Task<TimeSpan?> RunsWithinAsync(Clock time, ChannelReader<DateTimeOffset> runs, TimeSpan most)
    {
        var start = time.GetUtcNow();
        var step = TimeSpan.FromSeconds(20);
        // The clock moves only while the loop waits on a delay: the first one, or the one after the last run.
        await time.WaitForDelaysAsync(time.Fired + 1);
        for (var passed = TimeSpan.Zero; passed < most; passed += step)
        {
            var fired = time.Fired;
            time.Advance(TimeSpan.FromTicks(Math.Min(step.Ticks, (most - passed).Ticks)));
            if (time.Fired == fired) continue;
            // The delay fired: the run is over once the loop has set its next delay.
            await time.WaitForDelaysAsync(time.Fired + 1);
            Assert.True(runs.TryRead(out var at), "a delay fired but the job did not run");
            return at - start;
        }
        return null;
    }

    [Fact]
    public async Task The_first_run_comes_within_the_first_interval_at_a_random_point_and_then_one_each_interval()
    {
        var firsts = new List<TimeSpan>();
        for (var node = 0; node < 4; node++)
        {
            var time = new Clock();
            var runs = Channel.CreateUnbounded<DateTimeOffset>();
            using var sweep = new TestSweep(time, new CapturedLogs().CreateLogger("test"), () => runs.Writer.TryWrite(time.GetUtcNow()));
            await sweep.StartAsync(CancellationToken.None);
            var first = await RunsWithinAsync(time, runs.Reader, Interval - TimeSpan.FromSeconds(1));
            Assert.True(first is not null, "no run within the first interval");
            firsts.Add(first.Value);
            var second = await RunsWithinAsync(time, runs.Reader, Interval);
            Assert.True(second is { } s && s > Interval - TimeSpan.FromSeconds(30), $"the second run came {second} after the first");
            await sweep.StopAsync(CancellationToken.None);
            Assert.True(sweep.ExecuteTask!.IsCompletedSuccessfully);
        }
        // Four nodes started together do not all run at the same point.
        Assert.True(firsts.Distinct().Count() > 1, string.Join(", ", firsts));
    }

    [Fact]
    public async Task A_run_that_fails_unexpectedly_is_logged_with_its_exception_and_the_loop_goes_on()
    {
        var time = new Clock();
        var logs = new CapturedLogs();
        var runs = Channel.CreateUnbounded<DateTimeOffset>();
        using var sweep = new TestSweep(time, logs.CreateLogger("test"), () =>
        {
            runs.Writer.TryWrite(time.GetUtcNow());
            throw new ArgumentOutOfRangeException("t", "a bug");
        });
        await sweep.StartAsync(CancellationToken.None);
        Assert.NotNull(await RunsWithinAsync(time, runs.Reader, Interval));
        Assert.NotNull(await RunsWithinAsync(time, runs.Reader, Interval + TimeSpan.FromSeconds(20)));
        Assert.False(sweep.ExecuteTask!.IsCompleted);
        Assert.Contains(logs.Lines, line => line.StartsWith("Error test: Test sweep failed; retrying at the next interval") && line.Contains("ArgumentOutOfRangeException"));
        await sweep.StopAsync(CancellationToken.None);
    }
}
