using Ams.Infrastructure;
using Ams.Infrastructure.Messaging;
using FastEndpoints;
using MySqlConnector;

namespace Ams.Features.MarkRead;

/// <summary>Read receipts: the caller has read everything up to a message; every member's stream hears of it.</summary>
public sealed class Endpoint(MariaDb db, EventLog events, ReadEvents reads, TimeProvider time, RedisCircuit redis, ConversationLimits limits)
    : Endpoint<Request>
{
    public override void Configure()
    {
        Post("/api/conversations/{id}/read");
        ApiDocs.Document(Definition, "Mark a conversation read up to a message", b => b.Produces(StatusCodes.Status204NoContent), 400, 404, 429);
    }

    public override async Task HandleAsync(Request req, CancellationToken ct)
    {
        var me = User.UserId();
        if (await ConversationLimits.TryAsync(HttpContext, redis, "reads", me, limits.MaxReads, limits.ReadWindow) is { } wait)
        {
            await ConversationLimits.TooManyAsync(HttpContext, "read receipts", wait);
            return;
        }
        Ids.TryParse(req.UpTo, out var upTo);
        await using var connection = await db.OpenConnectionAsync(ct);
        if (!Ids.TryParse(Route<string>("id"), out var id))
        {
            await NotFound.ConversationAsync(HttpContext);
            return;
        }
        var (marked, member) = await Sql.MarkAsync(connection, me, id, upTo, time.UtcNowMillis());
        if (marked is null)
        {
            // A member names a message that is not (visibly) in the conversation; anyone else learns nothing.
            await (member ? NotFound.MessageAsync(HttpContext) : NotFound.ConversationAsync(HttpContext));
            return;
        }
        // A mark that did not move (an older or the same message) changes nothing and tells nobody.
        if (marked.Recipients.Length == 0)
        {
            await Send.NoContentAsync(ct);
            return;
        }
        var reader = (await Users.FindByIdAsync(db, me, ct))!;
        await events.PublishAsync(reads.Live(marked.Recipients, marked.Seqs, new ReadView(Ids.Of(id), reader.Username, Ids.Of(upTo))));
        await Send.NoContentAsync(ct);
    }
}
