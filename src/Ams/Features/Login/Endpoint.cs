using Ams.Infrastructure;
using FastEndpoints;
using MySqlConnector;

namespace Ams.Features.Login;

/// <summary>
/// The password step: a session (the API's token, the browser's cookie), or with 2FA on only a
/// challenge for the second step. The JSON call and the browser's form (see <see cref="ApiAndForm"/>).
/// </summary>
public sealed class Endpoint(MySqlDataSource db, Passwords passwords, Throttle throttle, SessionStore sessions, Challenges challenges, SecurityEvents events)
    : Endpoint<Request, Response>
{
    public const string SecondFactorCookie = "ams_2fa_challenge";

    abstract record Outcome;
    sealed record Throttled(TimeSpan RetryAfter) : Outcome;
    sealed record Rejected : Outcome;
    sealed record Succeeded(string Token, Session Session, UserRow User) : Outcome;
    sealed record NeedsSecondFactor(string Challenge, DateTimeOffset ExpiresAt) : Outcome;

    public override void Configure()
    {
        Post("/api/login", "/login");
        AllowAnonymous();
        ApiAndForm.Configure(Definition);
    }

    public override async Task HandleAsync(Request req, CancellationToken ct)
    {
        if (this.FormErrors() is { } errors)
        {
            await FormAsync(req.Username, errors, StatusCodes.Status422UnprocessableEntity);
            return;
        }
        var outcome = await SignInAsync(req, ct);
        await (HttpContext.IsApi() ? ApiReplyAsync(outcome, ct) : FormReplyAsync(req, outcome));
    }

    async Task<Outcome> SignInAsync(Request req, CancellationToken ct)
    {
        var username = req.Username.ToLowerInvariant();
        var address = ClientAddress.BucketOf(HttpContext);
        if (await throttle.TryAttemptAsync(username, address) is { } wait)
        {
            if (await Sql.FindUserAsync(db, username, ct) is { } locked) events.RecordInBackground(locked.Id, SecurityEvents.LoginThrottled, HttpContext, oncePer: wait);
            return new Throttled(wait);
        }

        var user = await Sql.FindUserAsync(db, username, ct);
        // A missing user is verified against a decoy hash, so both failures cost the same.
        if (!passwords.Verify(user?.PasswordHash, req.Password) || user is null)
        {
            if (user is not null) events.RecordInBackground(user.Id, SecurityEvents.LoginFailed, HttpContext);
            return new Rejected();
        }

        await throttle.ForgiveAsync(username, address);
        if (passwords.NeedsRehash(user.PasswordHash))
            await Sql.UpdateHashAsync(db, user.Id, user.PasswordHash, passwords.Hash(req.Password), ct);
        if (user.TwoFactorEnabled)
        {
            var (challenge, expiresAt) = await challenges.CreateAsync(user.Id);
            return new NeedsSecondFactor(challenge, expiresAt);
        }
        var (token, session) = await sessions.CreateAsync(user.Id, HttpContext);
        await events.RecordAsync(user.Id, SecurityEvents.Login, HttpContext);
        return new Succeeded(token, session, user);
    }

    Task ApiReplyAsync(Outcome outcome, CancellationToken ct) => outcome switch
    {
        Throttled t => Problem.WriteAsync(HttpContext, StatusCodes.Status429TooManyRequests, "Too many failed sign-ins", "Wait before trying again.", t.RetryAfter),
        NeedsSecondFactor c => HttpContext.Response.WriteAsJsonAsync(new ChallengeResponse(true, c.Challenge, c.ExpiresAt),
            LoginJson.Default.ChallengeResponse, cancellationToken: ct),
        Succeeded s => Send.OkAsync(new Response(s.Token, s.Session.ExpiresAt, s.User.ToView()), ct),
        _ /* Rejected */ => Problem.WriteAsync(HttpContext, StatusCodes.Status401Unauthorized, "Invalid username or password"),
    };

    Task FormReplyAsync(Request req, Outcome outcome)
    {
        switch (outcome)
        {
            case Throttled t:
                Problem.RetryAfter(HttpContext, t.RetryAfter);
                return FormAsync(req.Username, [$"Too many failed sign-ins. Try again in {Math.Ceiling(t.RetryAfter.TotalMinutes)} minutes."],
                    StatusCodes.Status429TooManyRequests);
            case NeedsSecondFactor c:
                // The challenge rides in a short-lived HttpOnly cookie, never in a URL.
                HttpContext.Response.Cookies.Append(SecondFactorCookie, c.Challenge, SessionCookie.Options(HttpContext.Request, c.ExpiresAt));
                return Layout.RedirectAfterPostAsync(HttpContext, "/login/2fa");
            case Succeeded s:
                SessionCookie.Append(HttpContext, s.Token, s.Session.ExpiresAt);
                return Layout.RedirectAfterPostAsync(HttpContext, "/");
            default: // Rejected
                return FormAsync(req.Username, ["Invalid username or password."], StatusCodes.Status401Unauthorized);
        }
    }

    Task FormAsync(string username, IEnumerable<string> errors, int status) =>
        Layout.SendAsync(HttpContext, "Sign in", Fragments.Form(HttpContext, username, errors), status);
}
