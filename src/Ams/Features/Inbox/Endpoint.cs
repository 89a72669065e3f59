using Ams.Infrastructure;
using Ams.Infrastructure.Crypto;
using Ams.Infrastructure.Messaging;
using FastEndpoints;
using MySqlConnector;

namespace Ams.Features.Inbox;

/// <summary>The caller's conversations, newest activity first, each with its last message and unread count.</summary>
public sealed class Endpoint(MySqlDataSource db, Envelope envelope) : EndpointWithoutRequest<List<ConversationView>>
{
    public override void Configure()
    {
        Get("/api/conversations");
    }

    public override async Task HandleAsync(CancellationToken ct)
    {
        await using var connection = await db.OpenConnectionAsync(ct);
        await Send.OkAsync(await Sql.ListAsync(connection, envelope, User.UserId()), ct);
    }
}
