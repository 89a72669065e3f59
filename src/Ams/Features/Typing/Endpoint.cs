using Ams.Infrastructure;
using Ams.Infrastructure.Messaging;
using FastEndpoints;
using MySqlConnector;

namespace Ams.Features.Typing;

/// <summary>
/// <c>POST /api/conversations/{id}/typing</c>: 204, and the conversation's other members who are
/// connected now (on any node) get <c>event: typing</c> <c>{conversationId, username}</c>. Nothing
/// is stored. 404 for non-members; 429 with Retry-After past <c>Conversations__MaxTyping</c> per
/// <c>Conversations__TypingWindow</c> (per user, all conversations together).
/// </summary>
public sealed class Endpoint(MariaDb db, EventLog events, TypingEvents typing, RedisCircuit redis, ConversationLimits limits)
    : EndpointWithoutRequest
{
    public override void Configure()
    {
        Post("/api/conversations/{id}/typing");
        ApiDocs.Document(Definition, "Tell the other members you are typing", b => b.Produces(StatusCodes.Status204NoContent), 404, 429);
    }

    public override async Task HandleAsync(CancellationToken ct)
    {
        var me = User.UserId();
        if (!Ids.TryParse(Route<string>("id", isRequired: false), out var id))
        {
            await NotFound.ConversationAsync(HttpContext);
            return;
        }
        if (await ConversationLimits.TryAsync(HttpContext, redis, "typing", me, limits.MaxTyping, limits.TypingWindow) is { } wait)
        {
            await ConversationLimits.TooManyAsync(HttpContext, "typing notices", wait);
            return;
        }
        List<Sql.MemberRow> members;
        await using (var connection = await db.OpenConnectionAsync(ct))
            members = await Sql.MembersAsync(connection, me, id);
        if (members.Count == 0)
        {
            await NotFound.ConversationAsync(HttpContext);
            return;
        }
        var others = members.Where(m => m.UserId != me).Select(m => m.UserId).ToArray();
        if (others.Length > 0)
            await events.PublishAsync(typing.Ephemeral(others, new TypingView(Ids.Of(id), members.First(m => m.UserId == me).Username)));
        await Send.NoContentAsync(ct);
    }
}
