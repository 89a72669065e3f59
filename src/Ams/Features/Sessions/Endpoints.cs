using Ams.Infrastructure;
using FastEndpoints;

namespace Ams.Features.Sessions;

/// <summary>The caller's sessions, newest first; the calling one is marked current.</summary>
public sealed class ListEndpoint(SessionStore sessions) : EndpointWithoutRequest<List<SessionView>>
{
    public override void Configure()
    {
        Get("/api/sessions");
        ApiDocs.Document(Definition, "The account's sessions, newest first", b => b.Produces<List<SessionView>>(StatusCodes.Status200OK));
    }

    public override async Task HandleAsync(CancellationToken ct) =>
        await Send.OkAsync(await ListAsync(sessions, HttpContext), ct);

    public static async Task<List<SessionView>> ListAsync(SessionStore sessions, HttpContext http)
    {
        var current = http.Session();
        return (await sessions.ListAsync(current.UserId))
            .Select(s => new SessionView(s.Id, s.Id == current.Id, s.CreatedAt, s.LastSeenAt, s.UserAgent, s.Address))
            .ToList();
    }
}

/// <summary>
/// Ends one of the caller's sessions on every node at once (its live streams close); 404 when the
/// caller has no such session. <c>DELETE /api/sessions/{id}</c>, and the settings form's POST.
/// </summary>
public sealed class RevokeEndpoint(SessionStore sessions, SecurityEvents events) : EndpointWithoutRequest
{
    public override void Configure()
    {
        Verbs(Http.DELETE);
        Routes("/api/sessions/{id}");
        ApiDocs.Document(Definition, "End one of the account's sessions", b => b.Produces(StatusCodes.Status204NoContent), 404);
    }

    public override async Task HandleAsync(CancellationToken ct)
    {
        if (!await RevokeAsync(sessions, events, HttpContext, Route<string>("id") ?? ""))
        {
            await Problem.WriteAsync(HttpContext, StatusCodes.Status404NotFound, "No such session");
            return;
        }
        await Send.NoContentAsync(ct);
    }

    public static async Task<bool> RevokeAsync(SessionStore sessions, SecurityEvents events, HttpContext http, string id)
    {
        var session = http.Session();
        if (!await sessions.RevokeByIdAsync(session.UserId, id)) return false;
        await events.RecordAsync(session.UserId, SecurityEvents.SessionRevoked, http);
        return true;
    }
}

/// <summary>The settings page's "End" button: the same as DELETE /api/sessions/{id}, then back to the settings.</summary>
public sealed class RevokeFormEndpoint(SessionStore sessions, SecurityEvents events) : EndpointWithoutRequest
{
    public override void Configure()
    {
        Post("/settings/sessions/{id}/revoke");
        AllowFormData(urlEncoded: true);
    }

    public override async Task HandleAsync(CancellationToken ct)
    {
        await RevokeEndpoint.RevokeAsync(sessions, events, HttpContext, Route<string>("id") ?? "");
        await Layout.RedirectAfterPostAsync(HttpContext, "/settings");
    }
}

/// <summary>Ends every session of the caller but the calling one. The JSON call and the settings form.</summary>
public sealed class RevokeOthersEndpoint(SessionStore sessions, SecurityEvents events) : EndpointWithoutRequest
{
    public override void Configure()
    {
        Post("/api/sessions/revoke-others", "/settings/sessions/revoke-others");
        ApiAndForm.Configure(Definition);
        ApiDocs.Document(Definition, "End every session but the calling one", b => b.Produces(StatusCodes.Status204NoContent));
    }

    public override async Task HandleAsync(CancellationToken ct)
    {
        var session = HttpContext.Session();
        // The history records sessions that ended: with none besides the caller's, nothing did.
        var othersLive = (await sessions.ListAsync(session.UserId)).Exists(s => s.Id != session.Id);
        await sessions.RevokeAllAsync(session.UserId, exceptSessionId: session.Id);
        if (othersLive) await events.RecordAsync(session.UserId, SecurityEvents.SessionRevoked, HttpContext);
        await (HttpContext.IsApi() ? Send.NoContentAsync(ct) : Layout.RedirectAfterPostAsync(HttpContext, "/settings"));
    }
}
