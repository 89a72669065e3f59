using Ams.Infrastructure;
using Ams.Infrastructure.Crypto;
using Ams.Infrastructure.Messaging;
using FastEndpoints;
using MySqlConnector;

namespace Ams.Features.AddMember;

/// <summary>Adds someone to a group; they see messages from then on.</summary>
public sealed class Endpoint(MySqlDataSource db, Envelope envelope, TimeProvider time) : Endpoint<Request, ConversationView>
{
    public override void Configure()
    {
        Post("/api/conversations/{id}/members");
    }

    public override async Task HandleAsync(Request req, CancellationToken ct)
    {
        var me = User.UserId();
        if (!Ids.TryParse(Route<string>("id"), out var id))
        {
            await NotFound.ConversationAsync(HttpContext);
            return;
        }
        await using var connection = await db.OpenConnectionAsync(ct);
        switch (await Sql.AddAsync(connection, me, id, req.Username.Trim().ToLowerInvariant(), time.UtcNowMillis()))
        {
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
        await Send.OkAsync((await Conversations.FindAsync(connection, envelope, me, id))!, ct);
    }
}
