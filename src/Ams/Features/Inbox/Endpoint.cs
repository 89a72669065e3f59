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
public sealed class Endpoint(MariaDb db, Envelope envelope, Presence presence) : EndpointWithoutRequest<List<ConversationView>>
{
    public override void Configure()
    {
        Get("/api/conversations");
        ApiDocs.Document(Definition, "The inbox: conversations by newest activity, with the last message and unread count",
            b => b.Produces<List<ConversationView>>(StatusCodes.Status200OK)
                .Limit(Sql.MaxLimit, Sql.DefaultLimit)
                .Query("before", "string", "a conversation id: the page after it"), 400, 404);
    }

    public override async Task HandleAsync(CancellationToken ct)
    {
        var (limit, before, errors) = Sql.PageOf(HttpContext.Request.Query);
        foreach (var error in errors) AddError(error);
        ThrowIfAnyErrors();
        var me = User.UserId();
        if (await db.ReadUnlessHungAsync(connection => Sql.ListAsync(connection, envelope, me, limit, before), ct) is { } list)
            await Send.OkAsync(await presence.ApplyAsync(list), ct);
        else await NotFound.ConversationAsync(HttpContext);
    }
}
