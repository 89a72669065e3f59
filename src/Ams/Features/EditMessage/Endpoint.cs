using Ams.Infrastructure;
using Ams.Infrastructure.Crypto;
using Ams.Infrastructure.Messaging;
using FastEndpoints;
using MySqlConnector;

namespace Ams.Features.EditMessage;

/// <summary>
/// <c>PATCH /api/messages/{id}</c>: the sender replaces a message's body. The new text is sealed
/// under a new data key and the old key is destroyed, so the old text is gone for good; the
/// message keeps its id, place and attachments and gains <c>editedAt</c>. Every member gets
/// <c>event: message.edited</c>. A deleted message cannot be edited (400).
/// </summary>
public sealed class Endpoint(MariaDb db, Envelope envelope, EventLog events, EditedEvents edited, TimeProvider time)
    : Endpoint<Request, MessageView>
{
    public override void Configure()
    {
        Patch("/api/messages/{id}");
        ApiDocs.Document(Definition, "Edit a message (its sender only)", b => b.Produces<MessageView>(StatusCodes.Status200OK), 400, 403, 404);
    }

    public override async Task HandleAsync(Request req, CancellationToken ct)
    {
        if (!Ids.TryParse(Route<string>("id", isRequired: false), out var id))
        {
            await NotFound.MessageAsync(HttpContext);
            return;
        }
        await using var connection = await db.OpenConnectionAsync(ct);
        switch (await Sql.EditAsync(connection, envelope, User.UserId(), id, req.Body, time.UtcNowMillis()))
        {
            case Sql.NotFound:
                await NotFound.MessageAsync(HttpContext);
                return;
            case Sql.NotSender:
                await Problem.WriteAsync(HttpContext, StatusCodes.Status403Forbidden, "Not your message", "Only its sender can edit a message.");
                return;
            case Sql.Deleted:
                await Problem.WriteAsync(HttpContext, StatusCodes.Status400BadRequest, "Message deleted", "A deleted message cannot be edited.");
                return;
            case Sql.Edited done:
                if (done.OldKey is { } oldKey) envelope.Forget([oldKey]);
                var me = User.UserId();
                var view = (await MessageRow.LoadAsync(connection, envelope, [id], me))[id];
                await edited.PublishAsync(events, view, id, await Reactions.LoadAsync(connection, [id]), done.Members, done.Seqs);
                await Send.OkAsync(view, ct);
                return;
        }
    }
}
