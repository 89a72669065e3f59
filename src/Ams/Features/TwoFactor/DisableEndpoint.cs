using Ams.Infrastructure;
using FastEndpoints;
using MySqlConnector;

namespace Ams.Features.TwoFactor;

/// <summary>
/// Turns 2FA off with the password and a current or recovery code; the user's other sessions
/// end. The JSON call and the settings form (see <see cref="ApiAndForm"/>).
/// </summary>
public sealed class DisableEndpoint(MariaDb db, Totp totp, Passwords passwords, SessionStore sessions, SecurityEvents events) : Endpoint<DisableRequest>
{
    public override void Configure()
    {
        Post("/api/2fa/disable", "/settings/2fa/disable");
        ApiAndForm.Configure(Definition);
        ApiDocs.Document(Definition, "Turn two-factor authentication off", b => b.Produces(StatusCodes.Status204NoContent), 400, 401, 429,
            ApiDocs.PasswordCheckBusy);
    }

    // Codes are often pasted with stray spaces.
    public override void OnBeforeValidate(DisableRequest req)
    {
        if (!HttpContext.IsApi()) req.Code = req.Code.Trim();
    }

    public override async Task HandleAsync(DisableRequest req, CancellationToken ct)
    {
        if (this.FormErrors() is { } errors)
        {
            await Settings.InvalidFormAsync(HttpContext, errors, enabledBefore: true);
            return;
        }
        var outcome = await DisableAsync(HttpContext.Session(), req.Password, req.Code);
        if (outcome is Settings.Done && HttpContext.IsApi()) await Send.NoContentAsync(ct);
        else await Settings.ReplyAsync(HttpContext, outcome, enabledBefore: true, enabledAfter: false);
    }

    async Task<Settings.Outcome> DisableAsync(Session session, string password, string code)
    {
        var user = (await Users.FindByIdAsync(db, session.UserId, default))!;
        if (!user.TwoFactorEnabled) return new Settings.Invalid("Two-factor authentication is not on.", Enabled: false);
        if (await totp.TryAttemptAsync(HttpContext, user.Id, null) is { Wait: { } wait }) return new Settings.LockedOut(wait);
        await using var connection = await db.OpenConnectionAsync();
        var secret = await totp.SecretAsync(connection, user.Id);
        if (!await passwords.VerifyAsync(user.PasswordHash, password) || secret is null || await totp.VerifySecondFactorAsync(connection, user.Id, secret, code) != Totp.Verdict.Right)
            return new Settings.Refused();
        await totp.ResetAsync(user.Id);
        await Sql.DisableAsync(connection, user.Id);
        await sessions.RevokeAllAsync(user.Id, exceptSessionId: session.Id);
        if (!Totp.IsTotpCode(code)) await events.RecordAsync(user.Id, SecurityEvents.RecoveryCodeUsed, HttpContext);
        await events.RecordAsync(user.Id, SecurityEvents.TwoFactorDisabled, HttpContext);
        return new Settings.Done();
    }
}
