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
        switch (await SecondStep.AttemptAsync(db, totp, challenges, sessions, req.Challenge, req.Code, ct))
        {
            case SecondStep.Succeeded s:
                await Send.OkAsync(new LoginResponse(s.Token, s.Session.ExpiresAt, s.User.ToView()), ct);
                break;
            case SecondStep.LockedOut l:
                await Problem.WriteAsync(HttpContext, StatusCodes.Status429TooManyRequests, "Too many wrong codes", "Wait before trying again.", l.RetryAfter);
                break;
            case SecondStep.WrongCode:
                await Problem.WriteAsync(HttpContext, StatusCodes.Status401Unauthorized, "Invalid code");
                break;
            default:
                await Problem.WriteAsync(HttpContext, StatusCodes.Status401Unauthorized, "Invalid or expired challenge", "Sign in with your password again.");
                break;
        }
    }
}

/// <summary>The second step, shared by the API and the browser form.</summary>
static class SecondStep
{
    public abstract record Outcome;
    public sealed record BadChallenge : Outcome;
    public sealed record WrongCode : Outcome;
    public sealed record LockedOut(TimeSpan RetryAfter) : Outcome;
    public sealed record Succeeded(string Token, Session Session, UserRow User) : Outcome;

    public static async Task<Outcome> AttemptAsync(MySqlDataSource db, Totp totp, Challenges challenges, SessionStore sessions,
        string challenge, string code, CancellationToken ct)
    {
        if (await challenges.FindAsync(challenge) is not { } found) return new BadChallenge();
        if (await totp.LockedForAsync(found.UserId) is { } wait) return new LockedOut(wait);
        await using var connection = await db.OpenConnectionAsync(ct);
        var secret = await totp.SecretAsync(connection, found.UserId);
        if (secret is null || !await totp.VerifySecondFactorAsync(connection, found.UserId, secret, code))
        {
            if (await totp.RecordFailureAsync(found.UserId, found.Id)) await challenges.RedeemAsync(found.Id);
            return new WrongCode();
        }
        if (!await challenges.RedeemAsync(found.Id)) return new BadChallenge();
        await totp.ResetAsync(found.UserId);
        var user = (await Users.FindByIdAsync(db, found.UserId, ct))!;
        var (token, session) = await sessions.CreateAsync(user.Id);
        return new Succeeded(token, session, user);
    }
}
