using Ams.Infrastructure;
using Ams.Infrastructure.Messaging;
using FastEndpoints;
using MySqlConnector;

namespace Ams.Features.SendMessage;

/// <summary>
/// Durable in MariaDB (sealed, with its events) before the 201; then published through Redis
/// for live delivery. A Redis outage delays live delivery, never the send.
/// </summary>
public sealed class Endpoint(MySqlDataSource db, GroupCommit store, EventLog events, MessageEvents messages, Throttle throttle, TimeProvider time)
    : Endpoint<Request, MessageView>
{
    public override void Configure()
    {
        Post("/api/messages");
    }

    public override async Task HandleAsync(Request req, CancellationToken ct)
    {
        switch (await Sending.SendAsync(db, store, events, messages, throttle, time, User.UserId(), req, ct))
        {
            case Sending.Sent sent:
                await Send.ResponseAsync(sent.Message, StatusCodes.Status201Created, ct);
                break;
            case Sending.SendingToSelf:
                ThrowError(r => r.To!, "You cannot send a direct message to yourself.");
                break;
            case var failure:
                await Sending.WriteFailureAsync(HttpContext, failure);
                break;
        }
    }
}

/// <summary>The send itself, shared by the API and the browser's composer.</summary>
static class Sending
{
    public abstract record Outcome;
    public sealed record Sent(MessageView Message) : Outcome;
    public sealed record Throttled(TimeSpan RetryAfter) : Outcome;
    public sealed record UnknownUser(string Username) : Outcome;
    public sealed record SendingToSelf : Outcome;
    public sealed record NoConversation : Outcome;

    public static async Task<Outcome> SendAsync(MySqlDataSource db, GroupCommit store, EventLog events, MessageEvents messages, Throttle throttle, TimeProvider time,
        long me, Request req, CancellationToken ct)
    {
        if (await throttle.TrySendAsync(me) is { } wait) return new Throttled(wait);
        long conversationId;
        if (req.To is { Length: > 0 } to)
        {
            await using var connection = await db.OpenConnectionAsync(ct);
            if (await Sql.FindUserAsync(connection, to.Trim().ToLowerInvariant()) is not { } other) return new UnknownUser(to);
            if (other == me) return new SendingToSelf();
            (conversationId, _) = await Conversations.FindOrCreateDirectAsync(connection, me, other, time.UtcNowMillis());
        }
        else if (!Ids.TryParse(req.ConversationId, out conversationId)) return new NoConversation();

        // Not cancelled with the request: once queued, the send is stored whether or not the client waits.
        var stored = await store.StoreAsync(conversationId, me, req.Body);
        if (stored is null) return new NoConversation();
        var view = new MessageView(Ids.Of(stored.Id), Ids.Of(conversationId), stored.Sender, req.Body,
            DateTime.SpecifyKind(stored.SentAt, DateTimeKind.Utc), stored.Entropy);
        await events.PublishAsync(messages.Live(stored.Recipients, stored.Seqs, view));
        return new Sent(view);
    }

    public static Task WriteFailureAsync(HttpContext http, Outcome outcome) => outcome switch
    {
        Throttled t => Problem.WriteAsync(http, StatusCodes.Status429TooManyRequests, "Too many messages", "Slow down and try again.", t.RetryAfter),
        UnknownUser u => Problem.WriteAsync(http, StatusCodes.Status404NotFound, "Unknown user", $"There is no user '{u.Username}'."),
        SendingToSelf => Problem.WriteAsync(http, StatusCodes.Status400BadRequest, "You cannot send a direct message to yourself."),
        _ => NotFound.ConversationAsync(http),
    };
}
