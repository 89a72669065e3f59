using Ams.Infrastructure;
using FastEndpoints;
using MySqlConnector;

namespace Ams.Features.TwoFactor;

/// <summary>
/// The second login step: the challenge from the password step plus a TOTP or recovery code.
/// Only now is a session created. Wrong codes count against the account and the challenge.
/// </summary>
public sealed class LoginEndpoint(MySqlDataSource db, Totp totp, Challenges challenges, SessionStore sessions) : Endpoint<LoginRequest, LoginResponse>
{
    public override void Configure()
    {
        Post("/api/login/2fa");
        AllowAnonymous();
    }

    public override async Task HandleAsync(LoginRequest req, CancellationToken ct)
    {
        var outcome = await SecondStep.AttemptAsync(HttpContext, db, totp, challenges, sessions, req.Challenge, req.Code, ct);
        if (outcome is SecondStep.Succeeded s)
            await Send.OkAsync(new LoginResponse(s.Token, s.Session.ExpiresAt, s.User.ToView()), ct);
    }
}

/// <summary>The second step, shared by the API and the browser form; writes its own failure responses.</summary>
static class SecondStep
{
    public sealed record Succeeded(string Token, Session Session, UserRow User);

    public static async Task<Succeeded?> AttemptAsync(HttpContext http, MySqlDataSource db, Totp totp, Challenges challenges,
        SessionStore sessions, string challenge, string code, CancellationToken ct)
    {
        if (await challenges.FindAsync(challenge) is not { } found)
        {
            await Problem.WriteAsync(http, StatusCodes.Status401Unauthorized, "Invalid or expired challenge", "Sign in with your password again.");
            return null;
        }
        if (await Guard.RefusedAsync(http, totp, found.UserId)) return null;
        await using var connection = await db.OpenConnectionAsync(ct);
        var secret = await totp.SecretAsync(connection, found.UserId);
        if (secret is null || !await totp.VerifySecondFactorAsync(connection, found.UserId, secret, code))
        {
            if (await totp.RecordFailureAsync(found.UserId, found.Id)) await challenges.RedeemAsync(found.Id);
            await Guard.WrongCodeAsync(http);
            return null;
        }
        if (!await challenges.RedeemAsync(found.Id))
        {
            await Problem.WriteAsync(http, StatusCodes.Status401Unauthorized, "Invalid or expired challenge", "Sign in with your password again.");
            return null;
        }
        await totp.ResetAsync(found.UserId);
        var user = (await Users.FindByIdAsync(db, found.UserId, ct))!;
        var (token, session) = await sessions.CreateAsync(user.Id);
        return new Succeeded(token, session, user);
    }
}
