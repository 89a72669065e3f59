using System.Globalization;

namespace Ams.Infrastructure;

/// <summary>
/// The numbers and durations settings may take, checked at start with the setting's name. Out of
/// range they started the node and failed later or quietly: a timer's period threw after the node
/// listened (a stack trace, exit 0), a negative session lifetime made every sign-in a 500, a
/// negative limit refused everyone, a zero interval spun a core. A value that is no number or
/// duration at all is the configuration binder's to refuse, as before.
/// </summary>
public static class SettingRanges
{
    static readonly string[] PositiveDurations =
    [
        "Sessions:IdleTimeout", "Sessions:AbsoluteLifetime", "Login:Window", "Registration:Window", "Messaging:Window",
        "Attachments:UploadWindow", "Attachments:UnsentLifetime", "Conversations:CreateWindow", "Conversations:MemberAddWindow",
        "Conversations:ReadWindow", "Conversations:ReactionWindow", "Conversations:TypingWindow", "Users:LookupWindow",
        "Presence:Ttl", "TwoFactor:Window", "Events:MaxReplayAge",
    ];

    // Periods of the nodes' timers, and the random.org call's timeout (a cancellation timer), which
    // take at most about 49 days: past that every tick failed, and no request was ever made.
    static readonly string[] Periods =
        ["Events:KeepAlive", "Presence:Heartbeat", "Entropy:ReseedInterval", "Entropy:TickInterval", "RandomOrg:Timeout"];
    static readonly TimeSpan LongestPeriod = TimeSpan.FromDays(1);

    // A sweep reads the whole of its table's users or rows: one every 0.1 ms kept a core and
    // MariaDB busy for nothing (outside check: 3,170 queries/s).
    static readonly string[] Sweeps = ["Attachments:SweepInterval", "Events:SweepInterval"];
    static readonly TimeSpan ShortestSweep = TimeSpan.FromSeconds(1);

    // A century stands for "for ever". Past about 739,000 days a lifetime or age taken from now fell
    // before the calendar's start: the attachment sweep then failed on every run.
    static readonly TimeSpan LongestDuration = TimeSpan.FromDays(36_500);

    static readonly string[] Durations = ["Sessions:OutageGrace", "Sessions:LocalCache"];

    static readonly string[] PositiveCounts =
    [
        "Login:MaxFailuresPerAccount", "Login:MaxFailuresPerAddress", "Login:MaxFailuresPerDevice", "Registration:MaxPerAddress",
        "Messaging:MaxSends", "Events:QueueCapacity", "Events:MaxStreamsPerUser", "Events:MaxReplay", "Conversations:MaxMembers",
        "Conversations:MaxCreates", "Conversations:MaxMemberAdds", "Conversations:MaxReads", "Conversations:MaxReactions",
        "Conversations:MaxTyping", "Users:MaxLookups", "TwoFactor:MaxFailuresPerAccount", "TwoFactor:MaxFailuresPerChallenge",
        "Passwords:MaxConcurrent", "Attachments:MaxBytes", "Attachments:QuotaBytes", "Attachments:MaxUploads",
    ];

    static readonly string[] Counts = ["Passwords:QueueTimeoutMs", "Entropy:DailyBitBudget", "Entropy:DailyRequestBudget", "Entropy:PoolLowWaterBytes"];

    public static void Check(IConfiguration config)
    {
        foreach (var key in PositiveDurations) Duration(config, key, TimeSpan.Zero, exclusive: true, LongestDuration);
        foreach (var key in Periods) Duration(config, key, TimeSpan.Zero, exclusive: true, LongestPeriod);
        foreach (var key in Sweeps) Duration(config, key, ShortestSweep, exclusive: false, LongestPeriod);
        foreach (var key in Durations) Duration(config, key, TimeSpan.Zero, exclusive: false, LongestDuration);
        foreach (var key in PositiveCounts) Count(config, key, 1);
        foreach (var key in Counts) Count(config, key, 0);
        MarksOutliveTheirRenewal(config);
        BlobsFillWholePoolChunks(config);
    }

    /// <summary>The entropy pool's chunk (Features/Entropy/Pool.cs) in bits: the pool keeps whole chunks and drops the rest.</summary>
    public const int BlobBitsStep = 256;

    // A blob smaller than a chunk was paid for on every tick and never used. random.org's largest blob is 2^20 bits.
    static void BlobsFillWholePoolChunks(IConfiguration config)
    {
        const int largest = 1 << 20;
        if (config["Entropy:BlobBits"] is not { Length: > 0 } value || !long.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out var bits)) return;
        if (bits < BlobBitsStep || bits > largest || bits % BlobBitsStep != 0)
            throw new ConfigurationException($"Entropy:BlobBits must be a multiple of {BlobBitsStep} from {BlobBitsStep} to {largest}, not '{value}'.");
    }

    // A mark that lapses before the next heartbeat renews it shows every online user as offline
    // for part of each period.
    static void MarksOutliveTheirRenewal(IConfiguration config)
    {
        var defaults = new Messaging.PresenceOptions();
        var heartbeat = Read(config, "Presence:Heartbeat") ?? defaults.Heartbeat;
        var ttl = Read(config, "Presence:Ttl") ?? defaults.Ttl;
        if (ttl <= heartbeat)
            throw new ConfigurationException($"Presence:Ttl ({ttl:c}) must be longer than Presence:Heartbeat ({heartbeat:c}): " +
                "a user's online mark would lapse before it is renewed.");
    }

    static TimeSpan? Read(IConfiguration config, string key) =>
        config[key] is { Length: > 0 } value && TimeSpan.TryParse(value, CultureInfo.InvariantCulture, out var span) ? span : null;

    static void Duration(IConfiguration config, string key, TimeSpan least, bool exclusive, TimeSpan most)
    {
        if (Read(config, key) is not { } span) return;
        var value = config[key];
        if (span < least || exclusive && span == least || span > most)
            throw new ConfigurationException($"{key} must be {(exclusive ? "more than" : "at least")} {least:c} and at most {most:c}, not '{value}' (a duration such as 00:00:10).");
    }

    static void Count(IConfiguration config, string key, long least)
    {
        if (config[key] is not { Length: > 0 } value || !long.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out var count)) return;
        if (count < least) throw new ConfigurationException($"{key} must be {least} or more, not '{value}'.");
    }
}
