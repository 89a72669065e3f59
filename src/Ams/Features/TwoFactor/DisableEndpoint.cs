using Ams.Infrastructure;
using FastEndpoints;
using MySqlConnector;

namespace Ams.Features.TwoFactor;

/// <summary>Turns 2FA off; needs the password and a current code (or a recovery code).</summary>
public sealed class DisableEndpoint(MySqlDataSource db, Totp totp, Passwords passwords, SessionStore sessions) : Endpoint<DisableRequest>
{
    public override void Configure()
    {
        Post("/api/2fa/disable");
    }

    public override async Task HandleAsync(DisableRequest req, CancellationToken ct)
    {
        var userId = User.UserId();
        var user = (await Users.FindByIdAsync(db, userId, ct))!;
        if (!user.TwoFactorEnabled) ThrowError("Two-factor authentication is not on.");
        if (await Guard.RefusedAsync(HttpContext, totp, userId)) return;
        await using var connection = await db.OpenConnectionAsync(ct);
        var secret = await totp.SecretAsync(connection, userId);
        var passwordOk = passwords.Verify(user.PasswordHash, req.Password);
        if (!passwordOk || secret is null || !await totp.VerifySecondFactorAsync(connection, userId, secret, req.Code))
        {
            await totp.RecordFailureAsync(userId, null);
            await Problem.WriteAsync(HttpContext, StatusCodes.Status401Unauthorized, "Invalid password or code");
            return;
        }
        await totp.ResetAsync(userId);
        await Sql.DisableAsync(connection, userId);
        await sessions.RevokeAllAsync(userId, exceptSessionId: HttpContext.Session().Id);
        await Send.NoContentAsync(ct);
    }
}
