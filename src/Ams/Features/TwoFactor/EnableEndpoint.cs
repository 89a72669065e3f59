using Ams.Infrastructure;
using FastEndpoints;
using MySqlConnector;

namespace Ams.Features.TwoFactor;

/// <summary>Confirms enrolment with a code from the new authenticator; returns the recovery codes, once.</summary>
public sealed class EnableEndpoint(MySqlDataSource db, Totp totp, SessionStore sessions) : Endpoint<CodeRequest, RecoveryCodesResponse>
{
    public override void Configure()
    {
        Post("/api/2fa/enable");
    }

    public override async Task HandleAsync(CodeRequest req, CancellationToken ct)
    {
        var userId = User.UserId();
        var user = (await Users.FindByIdAsync(db, userId, ct))!;
        await using var connection = await db.OpenConnectionAsync(ct);
        var secret = user.TwoFactorEnabled ? null : await totp.SecretAsync(connection, userId);
        if (secret is null)
            ThrowError(user.TwoFactorEnabled ? "Two-factor authentication is already on." : "Start with POST /api/2fa/setup.");
        if (await Guard.RefusedAsync(HttpContext, totp, userId)) return;
        if (!await totp.VerifyTotpAsync(userId, secret, req.Code))
        {
            await totp.RecordFailureAsync(userId, null);
            await Guard.WrongCodeAsync(HttpContext);
            return;
        }
        await totp.ResetAsync(userId);
        var (codes, hashes) = totp.NewRecoveryCodes(userId);
        await Sql.EnableAsync(connection, userId, hashes);
        await sessions.RevokeAllAsync(userId, exceptSessionId: HttpContext.Session().Id);
        await Send.OkAsync(new RecoveryCodesResponse(codes), ct);
    }
}

static class Guard
{
    /// <summary>429 while the account is locked out, even for a correct code.</summary>
    public static async Task<bool> RefusedAsync(HttpContext http, Totp totp, long userId)
    {
        if (await totp.LockedForAsync(userId) is not { } wait) return false;
        await Problem.WriteAsync(http, StatusCodes.Status429TooManyRequests, "Too many wrong codes", "Wait before trying again.", wait);
        return true;
    }

    public static Task WrongCodeAsync(HttpContext http) =>
        Problem.WriteAsync(http, StatusCodes.Status401Unauthorized, "Invalid code");
}
