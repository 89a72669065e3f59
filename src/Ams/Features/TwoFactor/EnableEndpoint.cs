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
        // A mistyped or wrong code shows the same QR code again, for the next code: a new one would
        // leave the entry the user's app already made useless, under the same name.
        if (this.FormErrors() is { } errors)
        {
            await (await PendingAsync() is { } pending
                ? Layout.SendAsync(HttpContext, Settings.Title, Fragments.Enrol(HttpContext, pending, errors), StatusCodes.Status422UnprocessableEntity)
                : Settings.InvalidFormAsync(HttpContext, errors, enabledBefore: false));
            return;
        }
        var outcome = await EnableAsync(HttpContext.Session(), req.Code);
        if (outcome is Settings.Done done && HttpContext.IsApi()) await Send.OkAsync(new RecoveryCodesResponse(done.RecoveryCodes!), ct);
        else if (outcome is Settings.Refused && !HttpContext.IsApi() && await PendingAsync() is { } setup)
            await Layout.SendAsync(HttpContext, Settings.Title, Fragments.Enrol(HttpContext, setup, ["That code did not work. Try the app's next code."]),
                StatusCodes.Status401Unauthorized);
        else await Settings.ReplyAsync(HttpContext, outcome, enabledBefore: false, enabledAfter: true);
    }

    /// <summary>The authenticator being set up, while two-factor authentication is not on yet.</summary>
    async Task<SetupResponse?> PendingAsync()
    {
        var user = (await Users.FindByIdAsync(db, HttpContext.Session().UserId, default))!;
        if (user.TwoFactorEnabled) return null;
        await using var connection = await db.OpenConnectionAsync();
        return await totp.SecretAsync(connection, user.Id) is { } secret ? SetupEndpoint.Describe(user.Username, secret) : null;
    }

    async Task<Settings.Outcome> EnableAsync(Session session, string code)
    {
        var user = (await Users.FindByIdAsync(db, session.UserId, default))!;
        if (user.TwoFactorEnabled) return new Settings.Invalid("Two-factor authentication is already on.", Enabled: true);
        await using var connection = await db.OpenConnectionAsync();
        if (await totp.SecretAsync(connection, user.Id) is not { } secret) return new Settings.Invalid("Start with the setup step.", Enabled: false);
        if (await totp.TryAttemptAsync(HttpContext, user.Id, null) is { Wait: { } wait }) return new Settings.LockedOut(wait);
        if (!await totp.VerifyTotpAsync(connection, user.Id, secret, code)) return new Settings.Refused();
        await totp.ResetAsync(user.Id);
        var (codes, hashes) = totp.NewRecoveryCodes(user.Id);
        await Sql.EnableAsync(connection, user.Id, hashes);
        await sessions.RevokeAllAsync(user.Id, exceptSessionId: session.Id);
        await events.RecordAsync(user.Id, SecurityEvents.TwoFactorEnabled, HttpContext);
        return new Settings.Done(codes);
    }
}
