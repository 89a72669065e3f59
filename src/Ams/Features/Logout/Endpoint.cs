using Ams.Infrastructure;
using FastEndpoints;

namespace Ams.Features.Logout;

/// <summary>Deletes the session from Redis, which every node reads, so it dies everywhere at once.</summary>
public sealed class Endpoint(SessionStore sessions) : EndpointWithoutRequest
{
    public override void Configure()
    {
        Post("/api/logout");
    }

    public override async Task HandleAsync(CancellationToken ct)
    {
        await sessions.RevokeAsync(HttpContext.Session());
        SessionCookie.Delete(HttpContext);
        await Send.NoContentAsync(ct);
    }
}
