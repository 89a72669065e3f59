namespace Ams.Features.Entropy;

/// <summary>
/// Spreads the daily random.org budget over the UTC day: by any moment the cluster may have
/// spent at most (hours passed + 1) / 25 of it. The extra hour lets a new day start with a
/// refill; the 25th keeps the last hour's share for the last hour, so a busy morning cannot
/// leave the evening without atmospheric input.
/// </summary>
public static class Pacing
{
    public static bool MayFetch(DateTimeOffset now, EntropyOptions options, long bitsSpentToday, long requestsToday)
    {
        var share = ((now.UtcDateTime - now.UtcDateTime.Date).TotalHours + 1) / 25;
        return bitsSpentToday + options.BlobBits <= options.DailyBitBudget * share
            && requestsToday + 1 <= options.DailyRequestBudget * share;
    }

    /// <summary>
    /// The first moment, from <paramref name="now"/> on, at which <see cref="MayFetch"/> allows a
    /// request (to the millisecond); when today's share never will, the moment the next UTC day's
    /// does; null when no day's budget holds a request (Entropy__DailyBitBudget under BlobBits, say).
    /// </summary>
    public static DateTimeOffset? EarliestFetch(DateTimeOffset now, EntropyOptions options, long bitsSpentToday, long requestsToday)
    {
        if (MayFetch(now, options, bitsSpentToday, requestsToday)) return now;
        var (day, bits, requests) = (new DateTimeOffset(now.UtcDateTime.Date, TimeSpan.Zero), bitsSpentToday, requestsToday);
        var hours = HoursUntilShare(options, bits, requests);
        // Negated comparisons: a budget of 0 makes the hours infinite or not a number.
        if (!(hours < 24)) (day, bits, requests, hours) = (day.AddDays(1), 0, 0, Math.Max(HoursUntilShare(options, 0, 0), 0));
        if (!(hours < 24)) return null;
        var at = day.AddMilliseconds(Math.Ceiling(hours * 3_600_000));
        // Rounding errors either way: the first millisecond MayFetch itself agrees with (a step or two).
        while (!MayFetch(at, options, bits, requests)) at = at.AddMilliseconds(1);
        while (at > day && MayFetch(at.AddMilliseconds(-1), options, bits, requests)) at = at.AddMilliseconds(-1);
        return at;
    }

    // The hours after 00:00 UTC at which the day's share covers one more request.
    static double HoursUntilShare(EntropyOptions options, long bitsSpentToday, long requestsToday) =>
        25 * Math.Max((double)(bitsSpentToday + options.BlobBits) / options.DailyBitBudget,
            (double)(requestsToday + 1) / options.DailyRequestBudget) - 1;

    public static DateTimeOffset NextUtcMidnight(DateTimeOffset now) => new(now.UtcDateTime.Date.AddDays(1), TimeSpan.Zero);
}
