using System.Globalization;
using FluentValidation.Results;
using Ams.Infrastructure;
using Ams.Infrastructure.Crypto;
using Ams.Infrastructure.Messaging;
using FastEndpoints;
using MySqlConnector;

namespace Ams.Features.Inbox;

/// <summary>
/// The caller's conversations, newest activity first, each with its last message and unread count:
/// a page of <c>?limit=</c> (1–200, default 50), after the conversation <c>?before=</c> names.
/// </summary>
public sealed class Endpoint(MySqlDataSource db, Envelope envelope, Presence presence) : EndpointWithoutRequest<List<ConversationView>>
{
    public override void Configure()
    {
        Get("/api/conversations");
        ApiDocs.Document(Definition, "The inbox: conversations by newest activity, with the last message and unread count",
            b => b.Produces<List<ConversationView>>(StatusCodes.Status200OK)
                .Query("limit", "integer", $"1..{Sql.MaxLimit}, default {Sql.DefaultLimit}")
                .Query("before", "string", "a conversation id: the page after it"), 400);
    }

    public override async Task HandleAsync(CancellationToken ct)
    {
        var query = HttpContext.Request.Query;
        var limit = Sql.DefaultLimit;
        if (query.ContainsKey("limit") && (!int.TryParse(query["limit"].ToString(), NumberStyles.None, CultureInfo.InvariantCulture, out limit)
            || limit is < 1 or > Sql.MaxLimit))
            AddError(new ValidationFailure("limit", $"limit must be a whole number from 1 to {Sql.MaxLimit}."));
        long? before = null;
        if (query.ContainsKey("before"))
        {
            if (Ids.TryParse(query["before"].ToString(), out var id)) before = id;
            else AddError(new ValidationFailure("before", "before must be a conversation id."));
        }
        ThrowIfAnyErrors();
        await using var connection = await db.OpenConnectionAsync(ct);
        await Send.OkAsync(await presence.ApplyAsync(await Sql.ListAsync(connection, envelope, User.UserId(), limit, before)), ct);
    }
}
