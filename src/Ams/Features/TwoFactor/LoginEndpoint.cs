using Ams.Infrastructure;
using FastEndpoints;
using MySqlConnector;

namespace Ams.Features.TwoFactor;

/// <summary>
/// The second login step: the challenge from the password step plus a TOTP or recovery code.
/// Only now is a session created. Wrong codes count against the account and the challenge.
/// The JSON call and the browser's form (see <see cref="ApiAndForm"/>).
/// </summary>
public sealed class LoginEndpoint(MariaDb db, Totp totp, Challenges challenges, SessionStore sessions, SecurityEvents events) : Endpoint<LoginRequest, LoginResponse>
{
    abstract record Outcome;
    sealed record BadChallenge : Outcome;
    sealed record WrongCode : Outcome;
    sealed record LockedOut(TimeSpan RetryAfter) : Outcome;
    sealed record ChallengeSpent : Outcome;
    sealed record Succeeded(string Token, Session Session, UserRow User) : Outcome;

    public override void Configure()
    {
        Post("/api/login/2fa", "/login/2fa");
        AllowAnonymous();
        ApiAndForm.Configure(Definition);
        ApiDocs.Document(Definition, "Finish a sign-in with a TOTP or recovery code", b => b.Produces<LoginResponse>(StatusCodes.Status200OK), 400, 401, 429);
    }

    // The browser's challenge is in the HttpOnly cookie the password step set, never in the page.
    public override void OnBeforeValidate(LoginRequest req)
    {
        if (HttpContext.IsApi()) return;
        req.Challenge = HttpContext.Request.Cookies[Login.Endpoint.SecondFactorCookie(HttpContext.Request)] ?? "";
        req.Code = req.Code.Trim();
    }

    public override async Task HandleAsync(LoginRequest req, CancellationToken ct)
    {
        if (this.FormErrors() is { } errors)
        {
            // The browser user never typed the challenge: a missing or mangled cookie means start over.
            await (ValidationFailures.Any(f => string.Equals(f.PropertyName, nameof(LoginRequest.Challenge), StringComparison.OrdinalIgnoreCase))
                ? FormReplyAsync(new BadChallenge())
                : FormAsync(errors, StatusCodes.Status422UnprocessableEntity));
            return;
        }
        var outcome = await AttemptAsync(req.Challenge, req.Code, ct);
        await (HttpContext.IsApi() ? ApiReplyAsync(outcome, ct) : FormReplyAsync(outcome));
    }

    async Task<Outcome> AttemptAsync(string challenge, string code, CancellationToken ct)
    {
        if (await challenges.FindAsync(challenge) is not { } found) return new BadChallenge();
        // A dead challenge is refused before its code is checked: checking uses the code up.
        if (await Users.FindByIdAsync(db, found.UserId, ct) is not { } user || Outdated(found, user)) return new BadChallenge();
        // Counted before the code is checked: past either limit even a right code is refused.
        switch (await totp.TryAttemptAsync(HttpContext, found.UserId, found.Id))
        {
            case { Wait: { } wait }: return new LockedOut(wait);
            case { ChallengeSpent: true }: return new ChallengeSpent();
        }
        await using var connection = await db.OpenConnectionAsync(ct);
        var secret = await totp.SecretAsync(connection, found.UserId);
        // The challenge is redeemed once the code is known to be right, before a recovery code is used up.
        var verdict = secret is null ? Totp.Verdict.Wrong
            : await totp.VerifySecondFactorAsync(connection, found.UserId, secret, code, () => challenges.RedeemAsync(found.Id));
        if (verdict == Totp.Verdict.Unclaimed) return new BadChallenge();
        if (verdict == Totp.Verdict.Wrong)
        {
            events.RecordInBackground(found.UserId, SecurityEvents.LoginFailed, HttpContext);
            return new WrongCode();
        }
        await totp.ResetAsync(found.UserId);
        var (token, session) = await sessions.CreateAsync(user.Id, HttpContext);
        // Disabled, or the password changed or reset, while the code was checked: the check above is stale.
        if (!await Users.StillAsSignedInAsync(db, user.Id, now => now.TwoFactorEnabled && now.PasswordHash == user.PasswordHash, ct))
        {
            await sessions.RevokeAsync(session);
            return new BadChallenge();
        }
        if (!Totp.IsTotpCode(code)) await events.RecordAsync(user.Id, SecurityEvents.RecoveryCodeUsed, HttpContext);
        await events.RecordAsync(user.Id, SecurityEvents.Login, HttpContext);
        return new Succeeded(token, session, user);
    }

    /// <summary>The account was disabled by an administrator, or its password changed or was reset, since the password step.</summary>
    static bool Outdated((string Id, long UserId, string? Stamp) found, UserRow user) =>
        user.DisabledAt is not null || found.Stamp is { } stamp && stamp != Challenges.PasswordStamp(user.PasswordHash);

    Task ApiReplyAsync(Outcome outcome, CancellationToken ct) => outcome switch
    {
        Succeeded s => Send.OkAsync(new LoginResponse(s.Token, s.Session.ExpiresAt, s.User.ToView()), ct),
        LockedOut l => Problem.WriteAsync(HttpContext, StatusCodes.Status429TooManyRequests, "Too many wrong codes", "Wait before trying again.", l.RetryAfter),
        WrongCode => Problem.WriteAsync(HttpContext, StatusCodes.Status401Unauthorized, "Invalid code"),
        ChallengeSpent => Problem.WriteAsync(HttpContext, StatusCodes.Status401Unauthorized, "Too many wrong codes for this challenge", "Sign in with your password again."),
        _ /* BadChallenge */ => Problem.WriteAsync(HttpContext, StatusCodes.Status401Unauthorized, "Invalid or expired challenge", "Sign in with your password again."),
    };

    Task FormReplyAsync(Outcome outcome)
    {
        switch (outcome)
        {
            case Succeeded s:
                HttpContext.Response.Cookies.Delete(Login.Endpoint.SecondFactorCookie(HttpContext.Request), SessionCookie.Options(HttpContext.Request, null));
                SessionCookie.Append(HttpContext, s.Token, s.Session.ExpiresAt);
                return Layout.RedirectAfterPostAsync(HttpContext, "/");
            case LockedOut l:
                Problem.RetryAfter(HttpContext, l.RetryAfter);
                return FormAsync(["Too many wrong codes. Wait and try again."], StatusCodes.Status429TooManyRequests);
            case WrongCode:
                return FormAsync(["That code did not work."], StatusCodes.Status401Unauthorized);
            case ChallengeSpent:
                return FormAsync(["Too many wrong codes for this sign-in. Start over with your password."], StatusCodes.Status401Unauthorized);
            default: // BadChallenge
                return FormAsync(["This sign-in has expired. Start over with your password."], StatusCodes.Status401Unauthorized);
        }
    }

    Task FormAsync(IEnumerable<string> errors, int status) =>
        Layout.SendAsync(HttpContext, "Two-factor authentication", Fragments.SecondStep(HttpContext, errors), status);
}
