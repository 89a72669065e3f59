using System.Globalization;
using Ams.Infrastructure;
using FastEndpoints;
using MySqlConnector;

namespace Ams.Features.SecurityHistory;

/// <summary>The caller's security history, newest first: <c>?limit=1..100</c>, default 50.</summary>
public sealed class Endpoint(MariaDb db) : EndpointWithoutRequest<List<SecurityEventView>>
{
    public const int DefaultLimit = 50, MaxLimit = 100;

    public override void Configure()
    {
        Get("/api/account/security-events");
        ApiDocs.Document(Definition, "The account's security history, newest first",
            b => b.Produces<List<SecurityEventView>>(StatusCodes.Status200OK).Limit(MaxLimit, DefaultLimit), 400);
    }

    public override async Task HandleAsync(CancellationToken ct)
    {
        var query = HttpContext.Request.Query;
        var limit = DefaultLimit;
        if (query.ContainsKey("limit") && (!int.TryParse(query["limit"], NumberStyles.None, CultureInfo.InvariantCulture, out limit) || limit is < 1 or > MaxLimit))
            AddError(new FluentValidation.Results.ValidationFailure("limit", $"limit must be a whole number from 1 to {MaxLimit}."));
        ThrowIfAnyErrors();
        await Send.OkAsync(await Sql.LatestAsync(db, User.UserId(), limit, ct), ct);
    }

    public static Task<List<SecurityEventView>> LatestAsync(MariaDb db, long userId, CancellationToken ct) =>
        Sql.LatestAsync(db, userId, DefaultLimit, ct);
}
