using Microsoft.Extensions.DependencyInjection.Extensions;
using StackExchange.Redis;

namespace Ams.Infrastructure.Messaging;

/// <summary>
/// The <c>Conversations</c> section: the largest group, and per-user budgets for the calls that
/// fan out to every member (creating conversations, adding members, marking read).
/// </summary>
public sealed class ConversationLimits
{
    public int MaxMembers { get; set; } = 256;
    public int MaxCreates { get; set; } = 30;
    public TimeSpan CreateWindow { get; set; } = TimeSpan.FromMinutes(10);
    public int MaxMemberAdds { get; set; } = 100;
    public TimeSpan MemberAddWindow { get; set; } = TimeSpan.FromMinutes(10);
    public int MaxReads { get; set; } = 120;
    public TimeSpan ReadWindow { get; set; } = TimeSpan.FromMinutes(1);
    public int MaxReactions { get; set; } = 120;
    public TimeSpan ReactionWindow { get; set; } = TimeSpan.FromMinutes(1);
    /// <summary>Typing notices per user: a client sends one every few seconds while someone types.</summary>
    public int MaxTyping { get; set; } = 10;
    public TimeSpan TypingWindow { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Registers the one instance, whichever slice asks first.</summary>
    public static void Add(IHostApplicationBuilder builder) =>
        builder.Services.TryAddSingleton(builder.Configuration.GetSection("Conversations").Get<ConversationLimits>() ?? new());

    /// <summary>
    /// Counts one call of <paramref name="action"/> by the user; how long to wait when the budget
    /// is spent. Fails open: while Redis is down the messages are still durable in MariaDB and
    /// only the limit lapses (as for sending).
    /// </summary>
    public static async Task<TimeSpan?> TryAsync(HttpContext http, RedisCircuit redis, string action, long userId, int limit, TimeSpan window)
    {
        try
        {
            return await RateLimit.TryAcquireAsync(http, redis, $"{action}:{userId}", limit, window);
        }
        catch (Exception e) when (e is RedisException or TimeoutException)
        {
            return null;
        }
    }

    public static Task TooManyAsync(HttpContext http, string what, TimeSpan wait) =>
        Problem.WriteAsync(http, StatusCodes.Status429TooManyRequests, $"Too many {what}", "Wait before trying again.", wait);

    public string TooManyMembers => $"A conversation has at most {MaxMembers} members.";
}
