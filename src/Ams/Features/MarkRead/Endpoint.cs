using Ams.Infrastructure;
using Ams.Infrastructure.Messaging;
using FastEndpoints;
using MySqlConnector;

namespace Ams.Features.MarkRead;

/// <summary>Read receipts: the caller has read everything up to a message; every member's stream hears of it.</summary>
public sealed class Endpoint(MySqlDataSource db, EventLog events, ReadEvents reads, TimeProvider time) : Endpoint<Request>
{
    public override void Configure()
    {
        Post("/api/conversations/{id}/read");
    }

    public override async Task HandleAsync(Request req, CancellationToken ct)
    {
        var me = User.UserId();
        Ids.TryParse(req.UpTo, out var upTo);
        await using var connection = await db.OpenConnectionAsync(ct);
        if (!Ids.TryParse(Route<string>("id"), out var id)
            || await Sql.MarkAsync(connection, me, id, upTo, time.UtcNowMillis()) is not { } marked)
        {
            await NotFound.ConversationAsync(HttpContext);
            return;
        }
        var reader = (await Users.FindByIdAsync(db, me, ct))!;
        await events.PublishAsync(reads.Live(marked.Recipients, marked.Seqs, new ReadView(Ids.Of(id), reader.Username, Ids.Of(upTo))));
        await Send.NoContentAsync(ct);
    }
}
