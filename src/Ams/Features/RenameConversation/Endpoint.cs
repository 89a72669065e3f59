using Ams.Features.GetConversation;
using Ams.Infrastructure;
using Ams.Infrastructure.Crypto;
using Ams.Infrastructure.Messaging;
using FastEndpoints;
using MySqlConnector;

namespace Ams.Features.RenameConversation;

/// <summary>
/// <c>PATCH /api/conversations/{id}</c> <c>{title}</c>: the group's owner renames it (403 for other
/// members, 400 for a direct conversation, 404 for non-members); every member gets
/// <c>event: conversation</c>.
/// </summary>
public sealed class Endpoint(MariaDb db, Envelope envelope, EventLog events, ConversationEvents conversations, TimeProvider time,
    Presence presence)
    : Endpoint<Request, ConversationView>
{
    public override void Configure()
    {
        Patch("/api/conversations/{id}");
        ApiDocs.Document(Definition, "Rename a group (its owner only)", b => b.Produces<ConversationView>(StatusCodes.Status200OK), 400, 403, 404);
    }

    public override async Task HandleAsync(Request req, CancellationToken ct)
    {
        var me = User.UserId();
        if (!Ids.TryParse(Route<string>("id", isRequired: false), out var id))
        {
            await NotFound.ConversationAsync(HttpContext);
            return;
        }
        await using var connection = await db.OpenConnectionAsync(ct);
        switch (await Sql.RenameAsync(connection, me, id, req.Title!.Trim(), time.UtcNowMillis()))
        {
            case Sql.NotFound:
                await NotFound.ConversationAsync(HttpContext);
                return;
            case Sql.NotAGroup:
                await Problem.WriteAsync(HttpContext, StatusCodes.Status400BadRequest, "Not a group", "Only group conversations have a title.");
                return;
            case Sql.NotOwner:
                await Problem.WriteAsync(HttpContext, StatusCodes.Status403Forbidden, "Not the owner", "Only the group's owner can rename it.");
                return;
            case Sql.Renamed done:
                await conversations.PublishAsync(events, connection, id, done.Members, done.Seqs);
                // The caller may have left or been removed since, in a request of its own: to a non-member the
                // group is not there, whatever this request changed before.
                if (await Conversations.FindAsync(connection, envelope, me, id) is { } view) await Send.OkAsync(await presence.ApplyAsync(view), ct);
                else await NotFound.ConversationAsync(HttpContext);
                return;
        }
    }
}
