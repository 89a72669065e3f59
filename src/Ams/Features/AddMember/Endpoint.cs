using Ams.Features.GetConversation;
using Ams.Infrastructure;
using Ams.Infrastructure.Crypto;
using Ams.Infrastructure.Messaging;
using FastEndpoints;
using MySqlConnector;

namespace Ams.Features.AddMember;

/// <summary>Adds someone to a group; they see messages from then on.</summary>
public sealed class Endpoint(MariaDb db, Envelope envelope, TimeProvider time, RedisCircuit redis, ConversationLimits limits,
    EventLog events, ConversationEvents conversations, Presence presence)
    : Endpoint<Request, ConversationView>
{
    public override void Configure()
    {
        Post("/api/conversations/{id}/members");
        ApiDocs.Document(Definition, "Add a member to a group", b => b.Produces<ConversationView>(StatusCodes.Status200OK), 400, 404, (409, "Conflict: the group is full (Conversations__MaxMembers)"), 429);
    }

    public override async Task HandleAsync(Request req, CancellationToken ct)
    {
        var me = User.UserId();
        if (!Ids.TryParse(Route<string>("id"), out var id))
        {
            await NotFound.ConversationAsync(HttpContext);
            return;
        }
        if (await ConversationLimits.TryAsync(HttpContext, redis, "member-adds", me, limits.MaxMemberAdds, limits.MemberAddWindow) is { } wait)
        {
            await ConversationLimits.TooManyAsync(HttpContext, "members added", wait);
            return;
        }
        await using var connection = await db.OpenConnectionAsync(ct);
        var (outcome, told) = await Sql.AddAsync(connection, me, id, req.Username.Trim().ToLowerInvariant(), time.UtcNowMillis(), limits.MaxMembers);
        switch (outcome)
        {
            case Sql.Outcome.Full:
                await Problem.WriteAsync(HttpContext, StatusCodes.Status409Conflict, "Group is full", limits.TooManyMembers);
                return;
            case Sql.Outcome.NotFound:
                await NotFound.ConversationAsync(HttpContext);
                return;
            case Sql.Outcome.UnknownUser:
                await Problem.WriteAsync(HttpContext, StatusCodes.Status404NotFound, "Unknown user", $"There is no user '{req.Username}'.");
                return;
            case Sql.Outcome.NotAGroup:
                ThrowError(r => r.Username, "Members can only be added to group conversations.");
                break;
        }
        if (told is not null) await conversations.PublishAsync(events, connection, id, told.Recipients, told.Seqs);
        // The caller may have left or been removed since, in a request of its own: to a non-member the
        // group is not there, whatever this request changed before.
        if (await Conversations.FindAsync(connection, envelope, me, id) is { } view) await Send.OkAsync(await presence.ApplyAsync(view), ct);
        else await NotFound.ConversationAsync(HttpContext);
    }
}
