using Ams.Infrastructure;
using Ams.Infrastructure.Crypto;
using FastEndpoints;
using MySqlConnector;

namespace Ams.Features.TwoFactor;

/// <summary>The 2FA settings page; its forms swap the section in place (htmx) or reload it (plain posts).</summary>
public sealed class SettingsPage(MySqlDataSource db) : EndpointWithoutRequest
{
    public override void Configure()
    {
        Get("/settings/2fa");
        AllowAnonymous();
    }

    public override async Task HandleAsync(CancellationToken ct)
    {
        var user = await Users.SignedInAsync(HttpContext, db, ct);
        if (user is null)
        {
            await Send.RedirectAsync("/login");
            return;
        }
        await Send.StringAsync(Layout.Page("Two-factor authentication", Fragments.Settings(HttpContext, user.TwoFactorEnabled, [])),
            200, "text/html; charset=utf-8", ct);
    }
}

public sealed class SetupForm(MySqlDataSource db, Envelope envelope, Totp totp, TimeProvider time) : EndpointWithoutRequest
{
    public override void Configure()
    {
        Post("/settings/2fa/setup");
        AllowFormData(urlEncoded: true);
    }

    public override async Task HandleAsync(CancellationToken ct)
    {
        var user = (await Users.FindByIdAsync(db, User.UserId(), ct))!;
        var section = user.TwoFactorEnabled
            ? Fragments.Settings(HttpContext, true, ["Two-factor authentication is already on."])
            : Fragments.Enrol(HttpContext, await SetupEndpoint.StartAsync(db, envelope, totp, time, user), []);
        await Send.StringAsync(Layout.PageOrFragment(HttpContext, "Two-factor authentication", section), 200, "text/html; charset=utf-8", ct);
    }
}

public sealed class EnableForm(Operations operations) : EndpointWithoutRequest
{
    public override void Configure()
    {
        Post("/settings/2fa/enable");
        AllowFormData(urlEncoded: true);
    }

    public override async Task HandleAsync(CancellationToken ct)
    {
        var form = await HttpContext.Request.ReadFormAsync(ct);
        var outcome = await operations.EnableAsync(HttpContext.Session(), form["code"].ToString().Trim());
        await SettingsReply.SendAsync(HttpContext, outcome, enabledAfter: true, ct);
    }
}

public sealed class DisableForm(Operations operations) : EndpointWithoutRequest
{
    public override void Configure()
    {
        Post("/settings/2fa/disable");
        AllowFormData(urlEncoded: true);
    }

    public override async Task HandleAsync(CancellationToken ct)
    {
        var form = await HttpContext.Request.ReadFormAsync(ct);
        var outcome = await operations.DisableAsync(HttpContext.Session(), form["password"].ToString(), form["code"].ToString().Trim());
        await SettingsReply.SendAsync(HttpContext, outcome, enabledAfter: false, ct);
    }
}

public sealed class RecoveryCodesForm(Operations operations) : EndpointWithoutRequest
{
    public override void Configure()
    {
        Post("/settings/2fa/recovery-codes");
        AllowFormData(urlEncoded: true);
    }

    public override async Task HandleAsync(CancellationToken ct)
    {
        var form = await HttpContext.Request.ReadFormAsync(ct);
        var outcome = await operations.RegenerateAsync(HttpContext.Session(), form["password"].ToString(), form["code"].ToString().Trim());
        await SettingsReply.SendAsync(HttpContext, outcome, enabledAfter: true, ct);
    }
}

static class SettingsReply
{
    public static Task SendAsync(HttpContext http, Operations.Outcome outcome, bool enabledAfter, CancellationToken ct)
    {
        var (status, section) = outcome switch
        {
            Operations.Done { RecoveryCodes: { } codes } => (200, Fragments.RecoveryCodes(codes)),
            Operations.Done => (200, Fragments.Settings(http, enabledAfter, [])),
            Operations.LockedOut => (429, Fragments.Settings(http, enabledAfter, ["Too many wrong codes. Wait and try again."])),
            Operations.Invalid i => (400, Fragments.Settings(http, !enabledAfter, [i.Message])),
            _ => (401, Fragments.Settings(http, enabledAfter, ["That code or password did not work."])),
        };
        http.Response.StatusCode = status;
        http.Response.ContentType = "text/html; charset=utf-8";
        return http.Response.WriteAsync(Layout.PageOrFragment(http, "Two-factor authentication", section), ct);
    }
}
