namespace Ams.Infrastructure;

public static class Time
{
    /// <summary>Now in UTC, cut to the millisecond precision of the DATETIME(3) columns.</summary>
    public static DateTime UtcNowMillis(this TimeProvider time)
    {
        var now = time.GetUtcNow().UtcDateTime;
        return now.AddTicks(-(now.Ticks % TimeSpan.TicksPerMillisecond));
    }
}
