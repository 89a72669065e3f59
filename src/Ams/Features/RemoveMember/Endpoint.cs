using Ams.Features.GetConversation;
using Ams.Infrastructure;
using Ams.Infrastructure.Messaging;
using FastEndpoints;
using MySqlConnector;

namespace Ams.Features.RemoveMember;

/// <summary>
/// <c>DELETE /api/conversations/{id}/members/{username}</c>: yourself = leave (any member of a
/// group); someone else = remove (the owner only, 403 otherwise). 400 for a direct conversation,
/// 404 when the caller is not a member or the named user is not one. From the commit on, the
/// removed user is in no recipient list of the conversation, its history, attachments and
/// conversation answer 404, it leaves their inbox, and a replay skips its events.
/// </summary>
public sealed class Endpoint(MariaDb db, EventLog events, ConversationEvents conversations, TimeProvider time) : EndpointWithoutRequest
{
    public override void Configure()
    {
        Delete("/api/conversations/{id}/members/{username}");
        ApiDocs.Document(Definition, "Leave a group, or remove a member (the owner only)", b => b.Produces(StatusCodes.Status204NoContent), 400, 403, 404);
    }

    public override async Task HandleAsync(CancellationToken ct)
    {
        var username = (Route<string>("username", isRequired: false) ?? "").Trim().ToLowerInvariant();
        if (!Ids.TryParse(Route<string>("id", isRequired: false), out var id))
        {
            await NotFound.ConversationAsync(HttpContext);
            return;
        }
        await using var connection = await db.OpenConnectionAsync(ct);
        switch (await Sql.RemoveAsync(connection, User.UserId(), id, username, time.UtcNowMillis()))
        {
            case Sql.NotFound:
                await NotFound.ConversationAsync(HttpContext);
                return;
            case Sql.NotAGroup:
                await Problem.WriteAsync(HttpContext, StatusCodes.Status400BadRequest, "Not a group",
                    "Nobody can leave or be removed from a direct conversation.");
                return;
            case Sql.NotOwner:
                await Problem.WriteAsync(HttpContext, StatusCodes.Status403Forbidden, "Not the owner", "Only the group's owner can remove other members.");
                return;
            case Sql.NotAMember:
                await Problem.WriteAsync(HttpContext, StatusCodes.Status404NotFound, "Member not found", "That user is not a member of this conversation.");
                return;
            case Sql.Removed done:
                await conversations.PublishAsync(events, connection, id, done.Recipients, done.Seqs);
                await Send.NoContentAsync(ct);
                return;
        }
    }
}
