using Ams.Infrastructure;
using FastEndpoints;
using MySqlConnector;

namespace Ams.Features.TwoFactor;

/// <summary>
/// Confirms enrolment with a code from the new authenticator; returns the recovery codes, once,
/// and ends the user's other sessions. The JSON call and the settings form (see <see cref="ApiAndForm"/>).
/// </summary>
public sealed class EnableEndpoint(MariaDb db, Totp totp, SessionStore sessions, SecurityEvents events) : Endpoint<CodeRequest, RecoveryCodesResponse>
{
    public override void Configure()
    {
        Post("/api/2fa/enable", "/settings/2fa/enable");
        ApiAndForm.Configure(Definition);
        ApiDocs.Document(Definition, "Confirm enrolment with a code: two-factor authentication is on; the recovery codes", b => b.Produces<RecoveryCodesResponse>(StatusCodes.Status200OK), 400, 401, 429);
    }

    // Codes are often pasted with stray spaces.
    public override void OnBeforeValidate(CodeRequest req)
    {
        if (!HttpContext.IsApi()) req.Code = req.Code.Trim();
    }

    public override async Task HandleAsync(CodeRequest req, CancellationToken ct)
    {
        if (this.FormErrors() is { } errors)
        {
            await Settings.InvalidFormAsync(HttpContext, errors, enabledBefore: false);
            return;
        }
        var outcome = await EnableAsync(HttpContext.Session(), req.Code);
        if (outcome is Settings.Done done && HttpContext.IsApi()) await Send.OkAsync(new RecoveryCodesResponse(done.RecoveryCodes!), ct);
        else await Settings.ReplyAsync(HttpContext, outcome, enabledBefore: false, enabledAfter: true);
    }

    async Task<Settings.Outcome> EnableAsync(Session session, string code)
    {
        var user = (await Users.FindByIdAsync(db, session.UserId, default))!;
        if (user.TwoFactorEnabled) return new Settings.Invalid("Two-factor authentication is already on.", Enabled: true);
        await using var connection = await db.OpenConnectionAsync();
        if (await totp.SecretAsync(connection, user.Id) is not { } secret) return new Settings.Invalid("Start with the setup step.", Enabled: false);
        if (await totp.TryAttemptAsync(HttpContext, user.Id, null) is { } wait) return new Settings.LockedOut(wait);
        if (!await totp.VerifyTotpAsync(user.Id, secret, code)) return new Settings.Refused();
        await totp.ResetAsync(user.Id);
        var (codes, hashes) = totp.NewRecoveryCodes(user.Id);
        await Sql.EnableAsync(connection, user.Id, hashes);
        await sessions.RevokeAllAsync(user.Id, exceptSessionId: session.Id);
        await events.RecordAsync(user.Id, SecurityEvents.TwoFactorEnabled, HttpContext);
        return new Settings.Done(codes);
    }
}
