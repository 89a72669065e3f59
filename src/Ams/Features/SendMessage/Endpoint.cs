using Ams.Infrastructure;
using Ams.Infrastructure.Crypto;
using Ams.Infrastructure.Messaging;
using FastEndpoints;
using MySqlConnector;

namespace Ams.Features.SendMessage;

/// <summary>
/// Durable in MariaDB (sealed, with its events) before the 201; then published through Redis
/// for live delivery. A Redis outage delays live delivery, never the send.
/// </summary>
public sealed class Endpoint(MySqlDataSource db, Envelope envelope, EventLog events, Throttle throttle, TimeProvider time)
    : Endpoint<Request, MessageView>
{
    public override void Configure()
    {
        Post("/api/messages");
    }

    public override async Task HandleAsync(Request req, CancellationToken ct)
    {
        var me = User.UserId();
        if (await throttle.TrySendAsync(me) is { } wait)
        {
            await Problem.WriteAsync(HttpContext, StatusCodes.Status429TooManyRequests, "Too many messages", "Slow down and try again.", wait);
            return;
        }
        await using var connection = await db.OpenConnectionAsync(ct);
        long conversationId;
        if (req.To is { Length: > 0 } to)
        {
            if (await Sql.FindUserAsync(connection, to.Trim().ToLowerInvariant()) is not { } other)
            {
                await Problem.WriteAsync(HttpContext, StatusCodes.Status404NotFound, "Unknown user", $"There is no user '{to}'.");
                return;
            }
            if (other == me) ThrowError(r => r.To!, "You cannot send a direct message to yourself.");
            (conversationId, _) = await Conversations.FindOrCreateDirectAsync(connection, me, other, time.UtcNowMillis());
        }
        else if (!Ids.TryParse(req.ConversationId, out conversationId))
        {
            await NotFound.ConversationAsync(HttpContext);
            return;
        }

        var stored = await Sql.StoreAsync(connection, envelope, conversationId, me, req.Body, time.UtcNowMillis());
        if (stored is null)
        {
            await NotFound.ConversationAsync(HttpContext);
            return;
        }
        var sender = (await Users.FindByIdAsync(db, me, ct))!;
        var view = new MessageView(Ids.Of(stored.Row.Id), Ids.Of(conversationId), new MemberView(sender.Username, sender.DisplayName),
            req.Body, DateTime.SpecifyKind(stored.Row.SentAt, DateTimeKind.Utc), stored.Entropy);
        await events.PublishAsync(new LiveEvent(EventKinds.Message, stored.Recipients, stored.Seqs, view, null, me));
        await Send.ResponseAsync(view, StatusCodes.Status201Created, ct);
    }
}
