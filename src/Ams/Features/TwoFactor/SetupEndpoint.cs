using Ams.Infrastructure;
using Ams.Infrastructure.Crypto;
using FastEndpoints;
using MySqlConnector;
using QRCoder;

namespace Ams.Features.TwoFactor;

/// <summary>
/// Starts (or restarts) enrolment: a new secret from the entropy mixer, sealed at rest, pending
/// until <c>/api/2fa/enable</c> confirms a code from it. Needs the password, so that a stolen
/// session alone cannot put the account under an attacker's authenticator; a wrong one counts
/// as a failed login. The JSON call and the settings form (see <see cref="ApiAndForm"/>).
/// </summary>
public sealed class SetupEndpoint(MariaDb db, Envelope envelope, Totp totp, TimeProvider time, Login.Reauthentication reauthentication)
    : Endpoint<SetupRequest, SetupResponse>
{
    const string AlreadyOn = "Two-factor authentication is already on.";

    public override void Configure()
    {
        Post("/api/2fa/setup", "/settings/2fa/setup");
        ApiAndForm.Configure(Definition);
        ApiDocs.Document(Definition, "Start two-factor enrolment: the secret, its otpauth URI and QR code", b => b.Produces<SetupResponse>(StatusCodes.Status200OK), 400, 401, (409, "Conflict: two-factor authentication is already on"), 429,
            ApiDocs.PasswordCheckBusy);
    }

    public override async Task HandleAsync(SetupRequest req, CancellationToken ct)
    {
        if (this.FormErrors() is { } errors)
        {
            await Settings.InvalidFormAsync(HttpContext, errors, enabledBefore: false);
            return;
        }
        var user = (await Users.FindByIdAsync(db, User.UserId(), ct))!;
        var api = HttpContext.IsApi();
        if (user.TwoFactorEnabled)
        {
            await (api
                ? Problem.WriteAsync(HttpContext, StatusCodes.Status409Conflict, "Two-factor authentication is already on",
                    "Turn it off first to enrol a new authenticator.")
                : Settings.SectionAsync(HttpContext, Fragments.Settings(HttpContext, true, [AlreadyOn])));
            return;
        }
        switch (await reauthentication.CheckAsync(HttpContext, user, req.Password, ct))
        {
            case Login.Reauthentication.Throttled t:
                // The password is what is checked here, against the sign-in throttle: said as sign-in says it.
                await (api
                    ? Login.Throttle.TooManyAsync(HttpContext, t.RetryAfter)
                    : Settings.ReplyAsync(HttpContext, new Settings.LockedOut(t.RetryAfter), enabledBefore: false, enabledAfter: false));
                return;
            case Login.Reauthentication.WrongPassword:
                await (api
                    ? Problem.WriteAsync(HttpContext, StatusCodes.Status401Unauthorized, "Invalid password")
                    : Layout.SendAsync(HttpContext, "Two-factor authentication", Fragments.Settings(HttpContext, false, ["That password did not work."]),
                        StatusCodes.Status401Unauthorized));
                return;
        }
        var setup = await StartAsync(user);
        await (api ? Send.OkAsync(setup, ct) : Settings.SectionAsync(HttpContext, Fragments.Enrol(HttpContext, setup, [])));
    }

    async Task<SetupResponse> StartAsync(UserRow user)
    {
        var secret = totp.NewSecret();
        await using (var connection = await db.OpenConnectionAsync())
        await using (var transaction = await Transaction.BeginAsync(connection))
        {
            var sealedSecret = await envelope.SealAsync(secret, Totp.SecretPurpose, Totp.SealedFields(user.Id), connection);
            await Sql.SavePendingAsync(connection, transaction, user.Id, sealedSecret.Blob, time.UtcNowMillis());
            await transaction.CommitAsync();
        }
        return Describe(user.Username, secret);
    }

    /// <summary>What the authenticator app is given: the secret as text, its otpauth URI and a QR code of that.</summary>
    public static SetupResponse Describe(string username, byte[] secret)
    {
        var base32 = Totp.Base32Secret(secret);
        var uri = $"otpauth://totp/AMS:{Uri.EscapeDataString(username)}?secret={base32}&issuer=AMS&algorithm=SHA1&digits=6&period=30";
        using var qr = new QRCodeGenerator().CreateQrCode(uri, QRCodeGenerator.ECCLevel.M);
        return new SetupResponse(base32, uri, new SvgQRCode(qr).GetGraphic(4));
    }
}
