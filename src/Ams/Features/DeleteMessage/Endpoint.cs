using Ams.Infrastructure;
using Ams.Infrastructure.Crypto;
using Ams.Infrastructure.Files;
using Ams.Infrastructure.Messaging;
using FastEndpoints;
using MySqlConnector;

namespace Ams.Features.DeleteMessage;

/// <summary>
/// <c>DELETE /api/messages/{id}</c>: the sender destroys a message. Its body's and attachments'
/// data keys are deleted first (no backup can decrypt them afterwards), then the chunks; history
/// keeps a tombstone and every member gets <c>event: message.deleted</c>. Deleting a tombstone
/// again is a 204 that changes nothing.
/// </summary>
public sealed class Endpoint(MariaDb db, Envelope envelope, IChunkStore chunks, EventLog events, DeletedEvents deleted,
    TimeProvider time, ILogger<Endpoint> logger) : EndpointWithoutRequest
{
    public override void Configure()
    {
        Delete("/api/messages/{id}");
        ApiDocs.Document(Definition, "Delete a message and destroy its body and attachments (its sender only)", b => b.Produces(StatusCodes.Status204NoContent), 403, 404);
    }

    public override async Task HandleAsync(CancellationToken ct)
    {
        if (!Ids.TryParse(Route<string>("id", isRequired: false), out var id))
        {
            await NotFound.MessageAsync(HttpContext);
            return;
        }
        Sql.Outcome outcome;
        await using (var connection = await db.OpenConnectionAsync(ct))
            outcome = await Sql.DeleteAsync(connection, User.UserId(), id, time.UtcNowMillis());
        switch (outcome)
        {
            case Sql.NotFound:
                await NotFound.MessageAsync(HttpContext);
                return;
            case Sql.NotSender:
                await Problem.WriteAsync(HttpContext, StatusCodes.Status403Forbidden, "Not your message", "Only its sender can delete a message.");
                return;
            case Sql.Deleted done:
                envelope.Forget(done.Keys);
                try
                {
                    await chunks.DeleteAsync(done.Attachments, CancellationToken.None);
                }
                catch (Exception e) when (e is MySqlException or TimeoutException)
                {
                    // Their keys are gone already, so they are unreadable; the sweeper removes them later.
                    logger.LogWarning("Chunks of deleted message {Id} not removed yet ({Message}); the sweeper removes them", id, e.Message);
                }
                await events.PublishAsync(deleted.Live(done.Members, done.Seqs, new DeletedView(Ids.Of(id), Ids.Of(done.ConversationId))));
                break;
        }
        await Send.NoContentAsync(ct);
    }
}
