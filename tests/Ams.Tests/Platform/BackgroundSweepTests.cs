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
            var time = new FakeTimeProvider();
            var logs = new CapturedLogs();
            var runs = Channel.CreateUnbounded<DateTimeOffset>();
            using var sweep = new TestSweep(time, logs.CreateLogger("test"), () => runs.Writer.TryWrite(time.GetUtcNow()), deletes);
            await sweep.StartAsync(CancellationToken.None);
            Assert.NotNull(await RunsWithinAsync(time, runs.Reader, Interval));
            // The line follows the run on the loop's own continuation, which a busy test host can hold up.
            for (var waited = 0; deletes > 0 && logs.Lines.Count == 0 && waited < 100; waited++) await Task.Delay(50);
            await sweep.StopAsync(CancellationToken.None);
            Assert.Equal(deletes == 0 ? [] : ["Information test: Test sweep: 3 deleted"], logs.Lines);
        }
    }

    /// <summary>
    /// Moves the fake clock on in steps until the job has run once more (how long after the call),
    /// or <paramref name="most"/> has passed (null).
    /// </summary>
    static async Task<TimeSpan?> RunsWithinAsync(FakeTimeProvider time, ChannelReader<DateTimeOffset> runs, TimeSpan most)
    {
        var start = time.GetUtcNow();
        var step = TimeSpan.FromSeconds(20);
        for (var passed = TimeSpan.Zero; ; passed += step)
        {
            // A run is a thread-pool continuation of the step that fired it: a moment of real time
            // for it, and for the loop to set its next delay (after logging a failure, say).
            await Task.Delay(5);
            if (runs.TryRead(out var at))
            {
                await Task.Delay(200);
                return at - start;
            }
            if (passed >= most) return null;
            time.Advance(TimeSpan.FromTicks(Math.Min(step.Ticks, (most - passed).Ticks)));
        }
    }

    [Fact]
    public async Task The_first_run_comes_within_the_first_interval_at_a_random_point_and_then_one_each_interval()
    {
        var firsts = new List<TimeSpan>();
        for (var node = 0; node < 4; node++)
        {
            var time = new FakeTimeProvider();
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
        var time = new FakeTimeProvider();
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
