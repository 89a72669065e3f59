using Ams.Infrastructure;
using Ams.Infrastructure.Messaging;
using FastEndpoints;
using MySqlConnector;

namespace Ams.Features.React;

/// <summary>
/// <c>PUT /api/messages/{id}/reactions/{emoji}</c> and <c>DELETE …</c>: add or take back one
/// emoji (URL-encoded in the path) on a message the caller can see. Both are idempotent (204
/// whether or not anything changed; only a change is announced as <c>event: reaction</c>). 400
/// when the path segment is not exactly one emoji (<see cref="Emoji"/>), 404 for a message the
/// caller cannot see or that is deleted, 429 past the per-user budget (<c>Conversations__MaxReactions</c>).
/// </summary>
public abstract class ReactionEndpoint(MariaDb db, EventLog events, ReactionEvents reactions, TimeProvider time,
    RedisCircuit redis, ConversationLimits limits) : EndpointWithoutRequest
{
    protected abstract bool Add { get; }

    public override async Task HandleAsync(CancellationToken ct)
    {
        var given = Route<string>("emoji", isRequired: false);
        if (!Emoji.IsOne(given))
        {
            AddError(new FluentValidation.Results.ValidationFailure("emoji", "emoji must be exactly one emoji."));
            ThrowIfAnyErrors();
        }
        var emoji = Emoji.Canonical(given!);
        if (!Ids.TryParse(Route<string>("id", isRequired: false), out var id))
        {
            await NotFound.MessageAsync(HttpContext);
            return;
        }
        var me = User.UserId();
        if (await ConversationLimits.TryAsync(HttpContext, redis, "reactions", me, limits.MaxReactions, limits.ReactionWindow) is { } wait)
        {
            await ConversationLimits.TooManyAsync(HttpContext, "reactions", wait);
            return;
        }
        await using var connection = await db.OpenConnectionAsync(ct);
        switch (await Sql.SetAsync(connection, me, id, emoji, Add, time.UtcNowMillis()))
        {
            case Sql.NotFound:
                await NotFound.MessageAsync(HttpContext);
                return;
            case Sql.Changed done:
                await events.PublishAsync(reactions.Live(done.Members, done.Seqs,
                    new ReactionChange(Ids.Of(id), Ids.Of(done.ConversationId), emoji, done.Username, Add, done.Count)));
                break;
        }
        await Send.NoContentAsync(ct);
    }
}

public sealed class AddEndpoint(MariaDb db, EventLog events, ReactionEvents reactions, TimeProvider time,
    RedisCircuit redis, ConversationLimits limits) : ReactionEndpoint(db, events, reactions, time, redis, limits)
{
    protected override bool Add => true;

    public override void Configure()
    {
        Put("/api/messages/{id}/reactions/{emoji}");
        ApiDocs.Document(Definition, "Add your reaction (one emoji, URL-encoded) to a message", b => b.Produces(StatusCodes.Status204NoContent), 400, 404, 429);
    }
}

public sealed class RemoveEndpoint(MariaDb db, EventLog events, ReactionEvents reactions, TimeProvider time,
    RedisCircuit redis, ConversationLimits limits) : ReactionEndpoint(db, events, reactions, time, redis, limits)
{
    protected override bool Add => false;

    public override void Configure()
    {
        Delete("/api/messages/{id}/reactions/{emoji}");
        ApiDocs.Document(Definition, "Remove your reaction from a message", b => b.Produces(StatusCodes.Status204NoContent), 400, 404, 429);
    }
}
