using Ams.Features.Entropy;

namespace Ams.Tests.Entropy;

public sealed class PacingTests
{
    static readonly EntropyOptions Options = new();

    [Theory]
    [InlineData("2026-11-26T00:00:00Z", 4096, 1)]        // one blob in the first hour's share: the second waits
    [InlineData("2026-11-26T09:30:00Z", 80_000, 10)]     // the morning's share spent
    [InlineData("2026-11-26T12:00:00Z", 10_000, 520)]    // the requests' share spent, not the bits'
    [InlineData("2026-11-26T23:59:00Z", 199_000, 40)]    // the day's budget spent: the next day's first share
    [InlineData("2026-11-26T23:10:00Z", 190_000, 40)]    // the last hour's share
    public void The_earliest_fetch_is_the_first_millisecond_pacing_allows(string at, long bits, long requests)
    {
        var now = DateTimeOffset.Parse(at, System.Globalization.CultureInfo.InvariantCulture);
        Assert.False(Pacing.MayFetch(now, Options, bits, requests));
        var earliest = Pacing.EarliestFetch(now, Options, bits, requests)!.Value;
        Assert.True(earliest > now);
        // Past midnight the day's spending starts again from nothing.
        var (spentBits, spentRequests) = earliest.UtcDateTime.Date == now.UtcDateTime.Date ? (bits, requests) : (0L, 0L);
        Assert.True(Pacing.MayFetch(earliest, Options, spentBits, spentRequests), $"not allowed at {earliest:O}");
        var before = earliest.AddMilliseconds(-1);
        if (before.UtcDateTime.Date == earliest.UtcDateTime.Date)
            Assert.False(Pacing.MayFetch(before, Options, spentBits, spentRequests), $"already allowed at {before:O}");
        else
            Assert.False(Pacing.MayFetch(before, Options, bits, requests), $"already allowed at {before:O}");
    }

    [Fact]
    public void A_fetch_pacing_allows_now_is_allowed_now()
    {
        var now = new DateTimeOffset(2026, 11, 26, 12, 0, 0, TimeSpan.Zero);
        Assert.Equal(now, Pacing.EarliestFetch(now, Options, 4096, 1));
    }

    [Theory]
    [InlineData(0, 900)]
    [InlineData(4095, 900)]
    [InlineData(200_000, 0)]
    public void A_daily_budget_under_one_request_allows_none(long bitBudget, int requestBudget)
    {
        var options = new EntropyOptions { DailyBitBudget = bitBudget, DailyRequestBudget = requestBudget };
        var now = new DateTimeOffset(2026, 11, 26, 12, 0, 0, TimeSpan.Zero);
        Assert.Null(Pacing.EarliestFetch(now, options, 0, 0));
        Assert.False(Pacing.MayFetch(new DateTimeOffset(2026, 11, 26, 23, 59, 59, 999, TimeSpan.Zero), options, 0, 0));   // the largest share of the day
    }
}
