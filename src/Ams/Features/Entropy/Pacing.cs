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

    public static DateTimeOffset NextUtcMidnight(DateTimeOffset now) => new(now.UtcDateTime.Date.AddDays(1), TimeSpan.Zero);
}
