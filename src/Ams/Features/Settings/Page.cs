using Ams.Infrastructure;
using FastEndpoints;
using MySqlConnector;

namespace Ams.Features.Settings;

/// <summary>
/// The account's settings: password, sessions, personal access tokens and the security history,
/// each section the fragment its own slice renders (and re-renders after its form).
/// </summary>
public sealed class Page(MariaDb db, SessionStore sessions, AccessTokenStore tokens) : EndpointWithoutRequest
{
    public override void Configure()
    {
        Get("/settings");
        AllowAnonymous();
    }

    public override async Task HandleAsync(CancellationToken ct)
    {
        if (await Users.SignedInOrToLoginAsync(HttpContext, db, ct) is not { } user) return;
        var sessionList = await Sessions.ListEndpoint.ListAsync(sessions, HttpContext);
        var tokenList = await tokens.ListAsync(user.Id);
        var history = await SecurityHistory.Endpoint.LatestAsync(db, user.Id, ct);
        var main = Html.Of($"""
            <h1>Settings</h1>
            <p><a href="/">Back to the chat</a> · <a href="/settings/2fa">Two-factor authentication: {(user.TwoFactorEnabled ? "on" : "off")}</a></p>
            {ChangePassword.Fragments.Form(HttpContext, [])}
            {Sessions.Fragments.List(HttpContext, sessionList)}
            {AccessTokens.Fragments.Section(HttpContext, tokenList, null, [])}
            {SecurityHistory.Fragments.List(history)}
            """);
        await Send.StringAsync(Layout.Page("Settings", main), 200, "text/html; charset=utf-8", ct);
    }
}
