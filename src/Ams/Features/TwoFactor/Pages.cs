using Ams.Infrastructure;
using FastEndpoints;
using MySqlConnector;

namespace Ams.Features.TwoFactor;

/// <summary>The browser's second login step: the challenge is in an HttpOnly cookie set by the password step.</summary>
public sealed class SecondStepPage : EndpointWithoutRequest
{
    public override void Configure()
    {
        Get("/login/2fa");
        AllowAnonymous();
    }

    public override Task HandleAsync(CancellationToken ct) =>
        Send.StringAsync(Layout.Page("Two-factor authentication", Fragments.SecondStep(HttpContext, [])), 200, "text/html; charset=utf-8", ct);
}

/// <summary>The 2FA settings page; its forms swap the section in place (htmx) or reload it (plain posts).</summary>
public sealed class SettingsPage(MariaDb db) : EndpointWithoutRequest
{
    public override void Configure()
    {
        Get("/settings/2fa");
        AllowAnonymous();
    }

    public override async Task HandleAsync(CancellationToken ct)
    {
        if (await Users.SignedInOrToLoginAsync(HttpContext, db, ct) is not { } user) return;
        await Send.StringAsync(Layout.Page("Two-factor authentication", Fragments.Settings(HttpContext, user.TwoFactorEnabled, [])),
            200, "text/html; charset=utf-8", ct);
    }
}
