using Ams.Infrastructure;
using Ams.Infrastructure.Crypto;
using Ams.Infrastructure.Messaging;
using FastEndpoints;
using MySqlConnector;

namespace Ams.Features.GetConversation;

public sealed class Endpoint(MariaDb db, Envelope envelope, Presence presence) : EndpointWithoutRequest<ConversationView>
{
    public override void Configure()
    {
        Get("/api/conversations/{id}");
        ApiDocs.Document(Definition, "One conversation", b => b.Produces<ConversationView>(StatusCodes.Status200OK), 404);
    }

    public override async Task HandleAsync(CancellationToken ct)
    {
        var me = User.UserId();
        if (!Ids.TryParse(Route<string>("id"), out var id)
            || await db.ReadUnlessHungAsync(connection => Conversations.FindAsync(connection, envelope, me, id), ct) is not { } view)
        {
            await NotFound.ConversationAsync(HttpContext);
            return;
        }
        await Send.OkAsync(await presence.ApplyAsync(view), ct);
    }
}
