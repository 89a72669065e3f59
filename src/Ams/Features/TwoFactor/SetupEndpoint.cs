using Ams.Infrastructure;
using Ams.Infrastructure.Crypto;
using FastEndpoints;
using MySqlConnector;
using QRCoder;

namespace Ams.Features.TwoFactor;

/// <summary>
/// Starts (or restarts) enrolment: a new secret from the entropy mixer, sealed at rest, pending
/// until <c>/api/2fa/enable</c> confirms a code from it.
/// </summary>
public sealed class SetupEndpoint(MySqlDataSource db, Envelope envelope, Totp totp, TimeProvider time) : EndpointWithoutRequest<SetupResponse>
{
    public override void Configure()
    {
        Post("/api/2fa/setup");
    }

    public override async Task HandleAsync(CancellationToken ct)
    {
        var user = (await Users.FindByIdAsync(db, User.UserId(), ct))!;
        if (user.TwoFactorEnabled)
        {
            await Problem.WriteAsync(HttpContext, StatusCodes.Status409Conflict, "Two-factor authentication is already on",
                "Turn it off first to enrol a new authenticator.");
            return;
        }
        await Send.OkAsync(await StartAsync(db, envelope, totp, time, user), ct);
    }

    internal static async Task<SetupResponse> StartAsync(MySqlDataSource db, Envelope envelope, Totp totp, TimeProvider time, UserRow user)
    {
        var secret = totp.NewSecret();
        await using (var connection = await db.OpenConnectionAsync())
        await using (var transaction = await connection.BeginTransactionAsync())
        {
            var sealedSecret = await envelope.SealAsync(secret, Totp.SecretPurpose, Totp.SealedFields(user.Id), connection, transaction);
            await Sql.SavePendingAsync(connection, transaction, user.Id, sealedSecret.Blob, time.UtcNowMillis());
            await transaction.CommitAsync();
        }
        var base32 = Totp.Base32Secret(secret);
        var uri = $"otpauth://totp/AMS:{Uri.EscapeDataString(user.Username)}?secret={base32}&issuer=AMS&algorithm=SHA1&digits=6&period=30";
        using var qr = new QRCodeGenerator().CreateQrCode(uri, QRCodeGenerator.ECCLevel.M);
        return new SetupResponse(base32, uri, new SvgQRCode(qr).GetGraphic(4));
    }
}
