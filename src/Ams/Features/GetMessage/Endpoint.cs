using Ams.Infrastructure;
using Ams.Infrastructure.Crypto;
using Ams.Infrastructure.Messaging;
using FastEndpoints;

namespace Ams.Features.GetMessage;

/// <summary>
/// <c>GET /api/messages/{id}</c>: one message as the caller's history shows it (a deleted one as
/// its tombstone), for a client that holds only its id: a notification, a link, the
/// <c>Location</c> of a send. 404 for anyone who could not page to it.
/// </summary>
public sealed class Endpoint(MariaDb db, Envelope envelope) : EndpointWithoutRequest<MessageView>
{
    public override void Configure()
    {
        Get("/api/messages/{id}");
        ApiDocs.Document(Definition, "One message", b => b.Produces<MessageView>(StatusCodes.Status200OK), 404);
    }

    public override async Task HandleAsync(CancellationToken ct)
    {
        var me = User.UserId();
        if (!Ids.TryParse(Route<string>("id", isRequired: false), out var id)
            || await db.ReadUnlessHungAsync(connection => Sql.VisibleAsync(connection, envelope, me, id), ct) is not { } view)
        {
            await NotFound.MessageAsync(HttpContext);
            return;
        }
        await Send.OkAsync(view, ct);
    }
}
