using Ams.Infrastructure;
using FastEndpoints;
using MySqlConnector;

namespace Ams.Features.TwoFactor;

/// <summary>
/// New recovery codes for the password and a current TOTP code; the old ones stop working.
/// The JSON call and the settings form (see <see cref="ApiAndForm"/>).
/// </summary>
public sealed class RecoveryCodesEndpoint(MariaDb db, Totp totp, Passwords passwords, SecurityEvents events) : Endpoint<RecoveryCodesRequest, RecoveryCodesResponse>
{
    public override void Configure()
    {
        Post("/api/2fa/recovery-codes", "/settings/2fa/recovery-codes");
        ApiAndForm.Configure(Definition);
        ApiDocs.Document(Definition, "New recovery codes; the old ones stop working", b => b.Produces<RecoveryCodesResponse>(StatusCodes.Status200OK), 400, 401, 429,
            ApiDocs.PasswordCheckBusy);
    }

    // Codes are often pasted with stray spaces.
    public override void OnBeforeValidate(RecoveryCodesRequest req)
    {
        if (!HttpContext.IsApi()) req.Code = req.Code.Trim();
    }

    public override async Task HandleAsync(RecoveryCodesRequest req, CancellationToken ct)
    {
        if (this.FormErrors() is { } errors)
        {
            await Settings.InvalidFormAsync(HttpContext, errors, enabledBefore: true);
            return;
        }
        var outcome = await RegenerateAsync(HttpContext.Session(), req.Password, req.Code);
        if (outcome is Settings.Done done && HttpContext.IsApi()) await Send.OkAsync(new RecoveryCodesResponse(done.RecoveryCodes!), ct);
        else await Settings.ReplyAsync(HttpContext, outcome, enabledBefore: true, enabledAfter: true);
    }

    async Task<Settings.Outcome> RegenerateAsync(Session session, string password, string code)
    {
        var user = (await Users.FindByIdAsync(db, session.UserId, default))!;
        // As disabling says: a wrong code or password is not what is wrong here.
        if (!user.TwoFactorEnabled) return new Settings.Invalid("Two-factor authentication is not on.", Enabled: false);
        if (await totp.TryAttemptAsync(HttpContext, user.Id, null) is { Wait: { } wait }) return new Settings.LockedOut(wait);
        await using var connection = await db.OpenConnectionAsync();
        var secret = await totp.SecretAsync(connection, user.Id);
        if (secret is null || !await passwords.VerifyAsync(user.PasswordHash, password) || !await totp.VerifyTotpAsync(connection, user.Id, secret, code))
            return new Settings.Refused();
        await totp.ResetAsync(user.Id);
        var (codes, hashes) = totp.NewRecoveryCodes(user.Id);
        await using (var transaction = await Transaction.BeginAsync(connection))
        {
            await Sql.ReplaceCodesAsync(connection, transaction, user.Id, hashes);
            await transaction.CommitAsync();
        }
        await events.RecordAsync(user.Id, SecurityEvents.RecoveryCodesRegenerated, HttpContext);
        return new Settings.Done(codes);
    }
}
