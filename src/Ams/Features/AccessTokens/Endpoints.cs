using System.Globalization;
using Ams.Infrastructure;
using FastEndpoints;
using Microsoft.AspNetCore.Authentication;

namespace Ams.Features.AccessTokens;

/// <summary>
/// A new personal access token, shown once (201), for the account's password: a token outlives
/// "sign out everywhere" and turning 2FA on, so a stolen session alone must not be able to make
/// one (an outside check made one from a stolen session and kept access after both). The JSON
/// call and the settings form (which shows the token in the tokens section, once).
/// </summary>
public sealed class CreateEndpoint(MariaDb db, AccessTokenStore tokens, SessionStore sessions, SecurityEvents events, Login.Reauthentication reauthentication)
    : Endpoint<CreateRequest, CreateResponse>
{
    public override void Configure()
    {
        Post("/api/tokens", "/settings/tokens");
        ApiAndForm.Configure(Definition);
        ApiDocs.Document(Definition, "Create a personal access token (shown once); needs the password",
            b => b.Produces<CreateResponse>(StatusCodes.Status201Created), 400,
            (409, "Conflict: the account already holds 100 live tokens; revoke one first"), 429, ApiDocs.PasswordCheckBusy);
    }

    public override async Task HandleAsync(CreateRequest req, CancellationToken ct)
    {
        var userId = User.UserId();
        if (this.FormErrors() is { } errors)
        {
            await SectionAsync(userId, errors, StatusCodes.Status422UnprocessableEntity);
            return;
        }
        var user = (await Users.FindByIdAsync(db, userId, ct))!;
        switch (await reauthentication.CheckAsync(HttpContext, user, req.Password, ct))
        {
            case Login.Reauthentication.Throttled t when HttpContext.IsApi():
                await Login.Throttle.TooManyAsync(HttpContext, t.RetryAfter);
                return;
            case Login.Reauthentication.Throttled t:
                Problem.RetryAfter(HttpContext, t.RetryAfter);
                await SectionAsync(userId, ["Too many failed sign-ins. Wait and try again."], StatusCodes.Status429TooManyRequests);
                return;
            case Login.Reauthentication.WrongPassword when HttpContext.IsApi():
                await Problem.WriteAsync(HttpContext, StatusCodes.Status401Unauthorized, "Invalid password");
                return;
            case Login.Reauthentication.WrongPassword:
                await SectionAsync(userId, ["That password did not work."], StatusCodes.Status401Unauthorized);
                return;
        }
        if (await tokens.CreateAsync(userId, req.Name, req.ExpiresInDays is { } days ? TimeSpan.FromDays(days) : null) is not (var token, var row))
        {
            var most = $"An account may hold {AccessTokenStore.MostPerAccount} tokens; revoke one first.";
            if (HttpContext.IsApi()) await Problem.WriteAsync(HttpContext, StatusCodes.Status409Conflict, "Too many access tokens", most);
            else await SectionAsync(userId, [most], StatusCodes.Status409Conflict);
            return;
        }
        // A password change or an administrator's disable may have ended the session while the token
        // was stored; their revocation ends the tokens after the sessions, so a session still there
        // now means this token will be ended with it.
        if (!await sessions.ConfirmAsync(HttpContext.Session().Id, ct))
        {
            await tokens.RevokeAsync(userId, row.Id);
            await HttpContext.ChallengeAsync(SessionAuthentication.SchemeName);
            return;
        }
        await events.RecordAsync(userId, SecurityEvents.TokenCreated, HttpContext);
        var created = new CreateResponse(Id(row.Id), row.Name, token, row.CreatedAt, row.ExpiresAt);
        if (HttpContext.IsApi()) await Send.ResponseAsync(created, StatusCodes.Status201Created, ct);
        else await Layout.SendAsync(HttpContext, "Settings", Fragments.Section(HttpContext, await tokens.ListAsync(userId), created, []));
    }

    async Task SectionAsync(long userId, IEnumerable<string> errors, int status) =>
        await Layout.SendAsync(HttpContext, "Settings", Fragments.Section(HttpContext, await tokens.ListAsync(userId), null, errors), status);

    internal static string Id(long id) => id.ToString(CultureInfo.InvariantCulture);
}

/// <summary>The caller's tokens (never the tokens themselves), newest first.</summary>
public sealed class ListEndpoint(AccessTokenStore tokens) : EndpointWithoutRequest<List<TokenView>>
{
    public override void Configure()
    {
        Get("/api/tokens");
        ApiDocs.Document(Definition, "The account's personal access tokens", b => b.Produces<List<TokenView>>(StatusCodes.Status200OK));
    }

    public override async Task HandleAsync(CancellationToken ct) =>
        await Send.OkAsync(Views(await tokens.ListAsync(User.UserId())), ct);

    internal static List<TokenView> Views(IEnumerable<AccessTokenRow> rows) =>
        rows.Select(r => new TokenView(CreateEndpoint.Id(r.Id), r.Name, r.CreatedAt, r.ExpiresAt, r.LastUsedAt)).ToList();
}

/// <summary>Revokes one of the caller's tokens on every node at once; 404 when the caller has no such token.</summary>
public sealed class RevokeEndpoint(AccessTokenStore tokens, SecurityEvents events) : EndpointWithoutRequest
{
    public override void Configure()
    {
        Verbs(Http.DELETE);
        Routes("/api/tokens/{id}");
        ApiDocs.Document(Definition, "Revoke a personal access token", b => b.Produces(StatusCodes.Status204NoContent), 404);
    }

    public override async Task HandleAsync(CancellationToken ct)
    {
        if (!await RevokeAsync(tokens, events, HttpContext, Route<string>("id")))
        {
            await Problem.WriteAsync(HttpContext, StatusCodes.Status404NotFound, "No such token");
            return;
        }
        await Send.NoContentAsync(ct);
    }

    internal static async Task<bool> RevokeAsync(AccessTokenStore tokens, SecurityEvents events, HttpContext http, string? id)
    {
        var userId = http.User.UserId();
        if (!long.TryParse(id, NumberStyles.None, CultureInfo.InvariantCulture, out var tokenId) || !await tokens.RevokeAsync(userId, tokenId))
            return false;
        await events.RecordAsync(userId, SecurityEvents.TokenRevoked, http);
        return true;
    }
}

/// <summary>The settings page's "Revoke" button: the same as DELETE /api/tokens/{id}, then back to the settings.</summary>
public sealed class RevokeFormEndpoint(AccessTokenStore tokens, SecurityEvents events) : EndpointWithoutRequest
{
    public override void Configure()
    {
        Post("/settings/tokens/{id}/revoke");
        AllowFormData(urlEncoded: true);
    }

    public override async Task HandleAsync(CancellationToken ct)
    {
        await RevokeEndpoint.RevokeAsync(tokens, events, HttpContext, Route<string>("id"));
        await Layout.RedirectAfterPostAsync(HttpContext, "/settings");
    }
}
