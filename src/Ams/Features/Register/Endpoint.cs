using Ams.Infrastructure;
using FastEndpoints;
using MySqlConnector;

namespace Ams.Features.Register;

public sealed class Endpoint(MySqlDataSource db, Passwords passwords, TimeProvider time) : Endpoint<Request, Response>
{
    public override void Configure()
    {
        Post("/api/register");
        AllowAnonymous();
    }

    public override async Task HandleAsync(Request req, CancellationToken ct)
    {
        var username = req.Username.ToLowerInvariant();
        var displayName = req.DisplayName ?? username;
        var id = await Sql.InsertUserAsync(db, username, displayName, passwords.Hash(req.Password), time.UtcNowMillis(), ct);
        if (id is null)
        {
            await Problem.WriteAsync(HttpContext, StatusCodes.Status409Conflict, "Username taken", $"The username '{username}' is already registered.");
            return;
        }
        await Send.ResponseAsync(new Response(id.Value.ToString(System.Globalization.CultureInfo.InvariantCulture), username, displayName), StatusCodes.Status201Created, ct);
    }
}
