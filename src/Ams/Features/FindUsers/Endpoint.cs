using System.Globalization;
using System.Text.RegularExpressions;
using Ams.Infrastructure;
using Ams.Infrastructure.Messaging;
using FastEndpoints;
using MySqlConnector;

namespace Ams.Features.FindUsers;

/// <summary>
/// <c>GET /api/users?prefix=..&amp;limit=1..20</c>: users whose username starts with the prefix
/// (case-insensitive, as usernames are stored lower-case), alphabetical, at most 20 (default 10),
/// the caller included. The prefix must be 2–32 username characters (400 otherwise), so no call
/// lists the whole user base; lookups are throttled per user (<c>Users__MaxLookups</c> per
/// <c>Users__LookupWindow</c>, 429 with Retry-After).
/// </summary>
public sealed partial class Endpoint(MariaDb db, RedisCircuit redis, LookupLimits limits) : EndpointWithoutRequest<List<MemberView>>
{
    public const int DefaultLimit = 10, MaxLimit = 20;

    [GeneratedRegex(@"\A[a-zA-Z0-9_.-]{2,32}\z")]
    private static partial Regex PrefixPattern();

    public override void Configure()
    {
        Get("/api/users");
        ApiDocs.Document(Definition, "Users whose username starts with a prefix",
            b => b.Produces<List<MemberView>>(StatusCodes.Status200OK)
                .Query("prefix", "string", "2 to 32 characters of a-z, 0-9, _ . - (capitals match as small letters)", required: true, pattern: "^[a-zA-Z0-9_.-]{2,32}$")
                .Limit(MaxLimit, DefaultLimit), 400, 429);
    }

    public override async Task HandleAsync(CancellationToken ct)
    {
        var query = HttpContext.Request.Query;
        var prefix = query["prefix"].ToString();
        if (query["prefix"].Count != 1 || !PrefixPattern().IsMatch(prefix))
            AddError(new FluentValidation.Results.ValidationFailure("prefix", "prefix must be 2–32 characters of a-z, 0-9, '_', '.' and '-'."));
        var limit = DefaultLimit;
        if (query.ContainsKey("limit") && (!int.TryParse(query["limit"], NumberStyles.None, CultureInfo.InvariantCulture, out limit) || limit is < 1 or > MaxLimit))
            AddError(new FluentValidation.Results.ValidationFailure("limit", $"limit must be a whole number from 1 to {MaxLimit}."));
        ThrowIfAnyErrors();

        if (await ConversationLimits.TryAsync(HttpContext, redis, "user-lookups", User.UserId(), limits.MaxLookups, limits.LookupWindow) is { } wait)
        {
            await ConversationLimits.TooManyAsync(HttpContext, "user lookups", wait);
            return;
        }
        var found = await db.ReadUnlessHungAsync(connection => Sql.StartingWithAsync(connection, prefix.ToLowerInvariant(), limit), ct);
        await Send.OkAsync(found, ct);
    }
}

/// <summary>The <c>Users</c> section's lookup budget.</summary>
public sealed class LookupLimits
{
    public int MaxLookups { get; set; } = 60;
    public TimeSpan LookupWindow { get; set; } = TimeSpan.FromMinutes(1);
}
