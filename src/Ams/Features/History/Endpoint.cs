using System.Globalization;
using Ams.Infrastructure;
using Ams.Infrastructure.Crypto;
using Ams.Infrastructure.Messaging;
using FastEndpoints;
using MySqlConnector;

namespace Ams.Features.History;

public sealed record Response(List<MessageView> Messages, string? NextBefore);

/// <summary>
/// Pages backwards through a conversation: each page oldest→newest; <c>nextBefore</c> fetches the
/// page before it and is null on the first message. Keyset paging on the id, so sends in
/// between cause no gaps or duplicates.
/// </summary>
public sealed class Endpoint(MariaDb db, Envelope envelope) : EndpointWithoutRequest<Response>
{
    public const int DefaultLimit = 50, MaxLimit = 100;

    public override void Configure()
    {
        Get("/api/conversations/{id}/messages");
        ApiDocs.Document(Definition, "A page of a conversation's history, oldest to newest",
            b => b.Produces<Response>(StatusCodes.Status200OK)
                .Query("before", "string", "a message id: the page before it (the response's nextBefore)")
                .Limit(MaxLimit, DefaultLimit), 400, 404);
    }

    public override async Task HandleAsync(CancellationToken ct)
    {
        var query = HttpContext.Request.Query;
        var limit = DefaultLimit;
        if (query.ContainsKey("limit") && (!int.TryParse(query["limit"], NumberStyles.None, CultureInfo.InvariantCulture, out limit) || limit is < 1 or > MaxLimit))
            AddError(new FluentValidation.Results.ValidationFailure("limit", $"limit must be a whole number from 1 to {MaxLimit}."));
        var before = long.MaxValue;
        if (query.ContainsKey("before") && !Ids.TryParse(query["before"], out before))
            AddError(new FluentValidation.Results.ValidationFailure("before", "before must be a message id."));
        ThrowIfAnyErrors();

        var me = User.UserId();
        if (!Ids.TryParse(Route<string>("id"), out var id)
            || await db.ReadUnlessHungAsync(connection => Sql.PageAsync(connection, envelope, me, id, before, limit), ct) is not { } page)
        {
            await NotFound.ConversationAsync(HttpContext);
            return;
        }
        await Send.OkAsync(new Response(page.Messages, page.More ? page.Messages[0].Id : null), ct);
    }
}
