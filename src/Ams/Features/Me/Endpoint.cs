using Ams.Infrastructure;
using FastEndpoints;
using MySqlConnector;

namespace Ams.Features.Me;

public sealed class Endpoint(MariaDb db) : EndpointWithoutRequest<UserView>
{
    public override void Configure()
    {
        Get("/api/me");
        ApiDocs.Document(Definition, "The signed-in user", b => b.Produces<UserView>(StatusCodes.Status200OK));
    }

    public override async Task HandleAsync(CancellationToken ct)
    {
        var user = await Users.FindByIdAsync(db, User.UserId(), ct);
        // A session can outlive its user only if the row was deleted by hand.
        if (user is null) await Send.UnauthorizedAsync(ct);
        else await Send.OkAsync(user.ToView(), ct);
    }
}
