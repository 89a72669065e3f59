using Ams.Infrastructure;
using FastEndpoints;
using MySqlConnector;

namespace Ams.Features.TwoFactor;

/// <summary>New recovery codes for a current TOTP code and the password; the old ones stop working.</summary>
public sealed class RecoveryCodesEndpoint(MySqlDataSource db, Totp totp, Passwords passwords) : Endpoint<DisableRequest, RecoveryCodesResponse>
{
    public override void Configure()
    {
        Post("/api/2fa/recovery-codes");
    }

    public override async Task HandleAsync(DisableRequest req, CancellationToken ct)
    {
        var userId = User.UserId();
        var user = (await Users.FindByIdAsync(db, userId, ct))!;
        if (await Guard.RefusedAsync(HttpContext, totp, userId)) return;
        await using var connection = await db.OpenConnectionAsync(ct);
        var secret = user.TwoFactorEnabled ? await totp.SecretAsync(connection, userId) : null;
        if (secret is null || !passwords.Verify(user.PasswordHash, req.Password) || !await totp.VerifyTotpAsync(userId, secret, req.Code))
        {
            await totp.RecordFailureAsync(userId, null);
            await Problem.WriteAsync(HttpContext, StatusCodes.Status401Unauthorized, "Invalid password or code");
            return;
        }
        await totp.ResetAsync(userId);
        var (codes, hashes) = totp.NewRecoveryCodes(userId);
        await using (var transaction = await connection.BeginTransactionAsync(ct))
        {
            await Sql.ReplaceCodesAsync(connection, transaction, userId, hashes);
            await transaction.CommitAsync(ct);
        }
        await Send.OkAsync(new RecoveryCodesResponse(codes), ct);
    }
}
