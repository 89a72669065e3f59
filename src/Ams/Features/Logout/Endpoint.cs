using Ams.Infrastructure;
using FastEndpoints;
using Microsoft.AspNetCore.Authentication;

namespace Ams.Features.Logout;

/// <summary>
/// Deletes the session from Redis, which every node reads, so it dies everywhere at once. The
/// JSON call and the browser's form (see <see cref="ApiAndForm"/>). It always clears the cookie and
/// succeeds: while Redis is unreachable the revocation is kept and written when Redis returns.
/// </summary>
public sealed class Endpoint(SessionStore sessions, AccessTokenStore tokens, SecurityEvents events, MariaDbCircuit circuit) : EndpointWithoutRequest
{
    public override void Configure()
    {
        Post("/api/logout", "/logout");
        // The form signs out whoever is there (and clears a stale cookie); the API needs a session.
        AllowAnonymous();
        ApiAndForm.Configure(Definition);
        Description(b => b.WithMetadata(new SignOutEndpoint(), new WithoutMariaDb()));
        ApiDocs.Document(Definition, "Sign out: the token stops working everywhere", b => b.Produces(StatusCodes.Status204NoContent).NeedsSession(), 401);
    }

    public override async Task HandleAsync(CancellationToken ct)
    {
        var signedIn = User.Identity?.IsAuthenticated == true;
        // Redis could not check the token (an outage): it is revoked all the same, see SessionStore.RevokeAsync.
        var unverified = SessionAuthentication.UnverifiedToken(HttpContext);
        if (HttpContext.IsApi() && !signedIn && unverified is null)
        {
            // The same 401 the authorization middleware sends for any other API call.
            await HttpContext.ChallengeAsync();
            return;
        }
        // A personal access token signing out is that token revoked (it answered 204 and went on working).
        if (signedIn && HttpContext.Session() is { IsAccessToken: true } token && AccessTokenStore.TryTokenIdOf(token.Id, out var tokenId))
        {
            // Revoked in MariaDB (503 while it does not answer: nothing revoked, the client repeats).
            circuit.ThrowIfOpen();
            if (await tokens.RevokeAsync(token.UserId, tokenId)) await events.RecordAsync(token.UserId, SecurityEvents.TokenRevoked, HttpContext);
        }
        else if (signedIn) await sessions.RevokeAsync(HttpContext.Session());
        else if (unverified is not null) await sessions.RevokeTokenAsync(unverified);
        SessionCookie.Delete(HttpContext);
        await (HttpContext.IsApi() ? Send.NoContentAsync(ct) : Layout.RedirectAfterPostAsync(HttpContext, "/login"));
    }
}
