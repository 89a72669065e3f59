using Ams.Infrastructure;
using Ams.Infrastructure.Crypto;
using Ams.Infrastructure.Files;
using Ams.Infrastructure.Messaging;
using FastEndpoints;
using MySqlConnector;

namespace Ams.Features.SendMessage;

/// <summary>
/// Durable in MariaDB (sealed, with its events) before the 201; then published through Redis
/// for live delivery. A Redis outage delays live delivery, never the send. The JSON call and the
/// browser's composer (see <see cref="ApiAndForm"/>): app.js posts the composer with fetch and
/// gets the message's fragment back to show at once; the event stream brings it to every other
/// tab (each shows a message once, by its id); a plain form post is redirected back to the
/// conversation.
/// </summary>
public sealed class Endpoint(MariaDb db, GroupCommit store, EventLog events, MessageEvents messages, Throttle throttle, Envelope envelope,
    MariaDbCircuit circuit, MasterKeys masterKeys, TimeProvider time, ILogger<Endpoint> logger)
    : Endpoint<Request, MessageView>
{
    abstract record Outcome;
    sealed record Sent(MessageView Message) : Outcome;
    sealed record Throttled(TimeSpan RetryAfter) : Outcome;
    sealed record UnknownUser(string Username) : Outcome;
    sealed record SendingToSelf : Outcome;
    sealed record NoConversation : Outcome;
    sealed record AttachmentsUnavailable : Outcome;
    sealed record KeyReused : Outcome;
    sealed record StillStoring : Outcome;

    const string ToSelf = "You cannot send a direct message to yourself.";

    public override void Configure()
    {
        Post("/api/messages", "/c/{conversationId}/send");
        ApiAndForm.Configure(Definition);
        ApiDocs.Document(Definition, "Send a message to a conversation, or to a user's direct conversation",
            b => b.Produces<MessageView>(StatusCodes.Status201Created).Header(IdempotencyKeys.Header,
                $"1 to {IdempotencyKeys.MaxLength} visible ASCII characters: a repeat returns the first send's message and stores nothing (24 h, per sender)",
                IdempotencyKeys.Pattern).ResponseHeader(StatusCodes.Status201Created, "Location", "/api/messages/{id}: the message")
                .ResponseHeader(StatusCodes.Status409Conflict, "Retry-After", "seconds: the first send with this Idempotency-Key is still in progress"),
            400, 404, (409, "Conflict: a first send with this Idempotency-Key that holds these attachments is still being stored; repeat after Retry-After"), 422, 429);
    }

    public override async Task HandleAsync(Request req, CancellationToken ct)
    {
        // The composer shows problems as they come; it has no form to re-render.
        if (this.FormErrors() is { } errors)
        {
            await RefuseAsync(StatusCodes.Status400BadRequest, errors[0]);
            return;
        }
        if (!IdempotencyKeys.TryRead(HttpContext.Request, req, masterKeys, out var key))
        {
            await RefuseAsync(StatusCodes.Status400BadRequest, "Invalid Idempotency-Key",
                $"{IdempotencyKeys.Header} must be one value of 1 to {IdempotencyKeys.MaxLength} visible ASCII characters.");
            return;
        }
        switch (await SendAsync(req, key, ct))
        {
            case Sent sent when HttpContext.IsApi():
                HttpContext.Response.Headers.Location = $"/api/messages/{sent.Message.Id}";
                await Send.ResponseAsync(sent.Message, StatusCodes.Status201Created, ct);
                break;
            case Sent sent when HttpContext.Request.Headers["X-Requested-With"] == "fetch":
                // The composer shows the message at once: over the event stream it would wait for
                // Redis, which an outage holds up (the stream's copy is then skipped as shown).
                await Send.StringAsync(MessageFragment.Of(sent.Message, sent.Message.Sender.Username).Value, StatusCodes.Status200OK, "text/html; charset=utf-8", ct);
                break;
            case Sent:
                await Layout.RedirectAfterPostAsync(HttpContext, $"/c/{req.ConversationId}");
                break;
            case SendingToSelf when HttpContext.IsApi():
                ThrowError(r => r.To!, ToSelf);
                break;
            case Throttled t:
                await RefuseAsync(StatusCodes.Status429TooManyRequests, "Too many messages", "Slow down and try again.", t.RetryAfter);
                break;
            case UnknownUser u:
                await RefuseAsync(StatusCodes.Status404NotFound, "Unknown user", $"There is no user '{u.Username}'.");
                break;
            case SendingToSelf:
                await RefuseAsync(StatusCodes.Status400BadRequest, ToSelf);
                break;
            case AttachmentsUnavailable:
                await RefuseAsync(StatusCodes.Status400BadRequest, "Attachment not available",
                    "Each attachment must be an upload of yours that has not been sent yet.");
                break;
            case StillStoring:
                await RefuseAsync(StatusCodes.Status409Conflict, "Send still in progress",
                    "An earlier send is still storing these attachments. Repeat this request with the same Idempotency-Key in a moment to get its message.",
                    TimeSpan.FromSeconds(1));
                break;
            case KeyReused:
                await RefuseAsync(StatusCodes.Status422UnprocessableEntity, "Idempotency-Key reused",
                    "This Idempotency-Key was already used for a different message.");
                break;
            default:
                await RefuseAsync(StatusCodes.Status404NotFound, "Conversation not found");
                break;
        }
    }

    /// <summary>
    /// Problem details for the API and the composer's fetch; a plain form post (a browser without
    /// script) gets a page that says why and leads back to the conversation.
    /// </summary>
    Task RefuseAsync(int status, string title, string? detail = null, TimeSpan? retryAfter = null)
    {
        if (HttpContext.IsApi() || HttpContext.Request.Headers.ContainsKey("X-Requested-With"))
            return Problem.WriteAsync(HttpContext, status, title, detail, retryAfter);
        if (retryAfter is { } wait) Problem.RetryAfter(HttpContext, wait);
        return Layout.SendAsync(HttpContext, "Message not sent", Html.Of($"""
            {Layout.Errors([detail is null ? title : $"{title} {detail}"])}
            <p><a href="/c/{Route<string>("conversationId", isRequired: false)}">Back to the conversation</a></p>
            """), status);
    }

    async Task<Outcome> SendAsync(Request req, IdempotencyKeys.Key? key, CancellationToken ct)
    {
        var me = User.UserId();
        // A retry is answered before the throttle counts it: it sends nothing.
        if (key is not null && await EarlierSendAsync(me, key, ct) is { } earlier) return earlier;
        if (await throttle.TrySendAsync(HttpContext, me) is { } wait) return new Throttled(wait);
        long conversationId;
        if (req.To is { Length: > 0 } to)
        {
            // Given up on a hung host, a conversation it still creates is the one the repeat finds.
            var (refused, direct) = await db.ReadUnlessHungAsync<(Outcome?, long)>(async connection =>
            {
                if (await Sql.FindUserAsync(connection, to.Trim().ToLowerInvariant()) is not { } other) return (new UnknownUser(to), 0);
                if (other == me) return (new SendingToSelf(), 0);
                return (null, (await Conversations.FindOrCreateDirectAsync(connection, me, other, time.UtcNowMillis())).Id);
            }, ct);
            if (refused is not null) return refused;
            conversationId = direct;
        }
        else if (!Ids.TryParse(req.ConversationId, out conversationId)) return new NoConversation();

        var attachmentIds = (req.Attachments ?? []).Select(a => Ids.TryParse(a, out var id) ? id : 0).ToArray();
        IReadOnlyList<AttachmentView> attachments = [];
        if (attachmentIds.Length > 0)
        {
            await using var connection = await db.OpenConnectionAsync(ct);
            if (await Attachments.ClaimAsync(connection, envelope, me, attachmentIds, time.GetUtcNow().UtcDateTime) is not { } claimed)
            {
                // A repeat whose first send is still being stored finds the attachments claimed by
                // it (or, by now, linked to its message): that send may yet succeed, so the repeat
                // is not told they are gone.
                if (key is null) return new AttachmentsUnavailable();
                if (await EarlierSendAsync(me, key, ct) is { } finished) return finished;
                if (await Attachments.AnyBeingSentAsync(connection, me, attachmentIds)) return new StillStoring();
                // The first send may have committed between the two questions: its key is stored in
                // the transaction that links the attachments.
                return await EarlierSendAsync(me, key, ct) ?? new AttachmentsUnavailable();
            }
            attachments = claimed;
        }

        // Not cancelled with the request: once queued, the send is stored whether or not the client waits.
        Sql.Stored? stored;
        try
        {
            stored = await store.StoreAsync(conversationId, me, req.Body, attachmentIds, key);
        }
        catch (Exception e) when (key is not null && e is GroupCommit.RepeatedKeyException or MySqlException { ErrorCode: MySqlErrorCode.DuplicateKeyEntry })
        {
            // The same key won a race on another request; this one stored nothing.
            await Attachments.ReleaseAsync(db, attachmentIds);
            if (await EarlierSendAsync(me, key, ct) is { } winner) return winner;
            throw;
        }
        catch (Exception e)
        {
            await Attachments.ReleaseAfterFailureAsync(db, circuit, attachmentIds, e, logger);
            throw;
        }
        if (stored is null)
        {
            await Attachments.ReleaseAsync(db, attachmentIds);
            return new NoConversation();
        }
        var view = new MessageView(Ids.Of(stored.Id), Ids.Of(conversationId), stored.Sender, req.Body,
            DateTime.SpecifyKind(stored.SentAt, DateTimeKind.Utc), stored.Entropy, attachments);
        await events.PublishAsync(messages.Live(stored.Recipients, stored.Seqs, view));
        return new Sent(view);
    }

    /// <summary>What an earlier send with this key gets again: its message as it is now, or 422 for a different request.</summary>
    Task<Outcome?> EarlierSendAsync(long me, IdempotencyKeys.Key key, CancellationToken ct) => db.ReadUnlessHungAsync<Outcome?>(async connection =>
    {
        if (await IdempotencyKeys.FindAsync(connection, me, key, masterKeys, time.UtcNowMillis()) is not { } earlier) return null;
        if (!earlier.SameRequest) return new KeyReused();
        var views = await MessageRow.LoadAsync(connection, envelope, [earlier.MessageId], me);
        return views.TryGetValue(earlier.MessageId, out var view) ? new Sent(view) : new NoConversation();
    }, ct);
}
