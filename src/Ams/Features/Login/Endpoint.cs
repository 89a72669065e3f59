using Ams.Infrastructure;
using FastEndpoints;
using MySqlConnector;

namespace Ams.Features.Login;

/// <summary>
/// The password step: a session (the API's token, the browser's cookie), or with 2FA on only a
/// challenge for the second step. The JSON call and the browser's form (see <see cref="ApiAndForm"/>).
/// </summary>
public sealed class Endpoint(MariaDb db, Passwords passwords, Throttle throttle, Devices devices, SessionStore sessions, Challenges challenges, SecurityEvents events,
    Register.RegistrationLimits registration)
    : Endpoint<Request, Response>
{
    /// <summary>The second-factor challenge's cookie: <c>__Host-</c> prefixed over HTTPS, as the session cookie is.</summary>
    public static string SecondFactorCookie(HttpRequest request) => request.IsHttps ? "__Host-ams_2fa_challenge" : "ams_2fa_challenge";

    abstract record Outcome;
    sealed record Throttled(TimeSpan RetryAfter) : Outcome;
    sealed record Rejected : Outcome;
    sealed record Succeeded(string Token, Session Session, UserRow User, string DeviceToken) : Outcome;
    sealed record NeedsSecondFactor(string Challenge, DateTimeOffset ExpiresAt, string DeviceToken) : Outcome;

    public override void Configure()
    {
        Post("/api/login", "/login");
        AllowAnonymous();
        ApiAndForm.Configure(Definition);
        // With two-factor authentication on, the 200 is a challenge for POST /api/login/2fa instead of a session.
        ApiDocs.Document(Definition, "Sign in with a username and password",
            b => b.Produces<Response>(StatusCodes.Status200OK).Produces<ChallengeResponse>(StatusCodes.Status200OK), 400, 401, 429,
            ApiDocs.PasswordCheckBusy);
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
        var address = ClientAddress.BucketOf(HttpContext);
        // The account is found first, so that every spelling of its name shares its budget.
        var user = await Sql.FindUserAsync(db, req.Username.ToLowerInvariant(), ct);
        var account = Login.Throttle.AccountOf(user, req.Username);
        // A client that signed in to this account before is judged by its own budget (OWASP device cookies).
        var device = await devices.ReadAsync(req.DeviceToken ?? HttpContext.Request.Cookies[Devices.CookieName(HttpContext.Request)]);
        if (device is not null && device.UserId != user?.Id) device = null;
        var wait = device is not null ? await throttle.TryDeviceAttemptAsync(HttpContext, device.Id) : await throttle.TryAttemptAsync(HttpContext, account, address);
        if (wait is { } w)
        {
            if (user is not null) events.RecordInBackground(user.Id, SecurityEvents.LoginThrottled, HttpContext, oncePer: w);
            return new Throttled(w);
        }

        // A missing user is verified against a decoy hash, so both failures cost the same.
        if (!await throttle.CheckAsync(HttpContext, () => passwords.VerifyAsync(user?.PasswordHash, req.Password, ct)) || user is null)
        {
            if (user is not null) events.RecordInBackground(user.Id, SecurityEvents.LoginFailed, HttpContext);
            return new Rejected();
        }

        var deviceToken = device?.Token ?? await devices.IssueAsync(user.Id);
        string? rehashed = null;
        if (passwords.NeedsRehash(user.PasswordHash))
            await Sql.UpdateHashAsync(db, user.Id, user.PasswordHash, rehashed = await passwords.HashAsync(req.Password, ct), ct);
        if (user.TwoFactorEnabled)
        {
            var (challenge, expiresAt) = await challenges.CreateAsync(user.Id, rehashed ?? user.PasswordHash);
            return new NeedsSecondFactor(challenge, expiresAt, deviceToken);
        }
        var (token, session) = await sessions.CreateAsync(user.Id, HttpContext);
        if (!await Users.StillAsSignedInAsync(db, user.Id, now => !now.TwoFactorEnabled && (now.PasswordHash == user.PasswordHash || now.PasswordHash == rehashed), ct))
        {
            await sessions.RevokeAsync(session);
            return new Rejected();
        }
        await events.RecordAsync(user.Id, SecurityEvents.Login, HttpContext);
        return new Succeeded(token, session, user, deviceToken);
    }

    Task ApiReplyAsync(Outcome outcome, CancellationToken ct) => outcome switch
    {
        Throttled t => Login.Throttle.TooManyAsync(HttpContext, t.RetryAfter),
        NeedsSecondFactor c => HttpContext.Response.WriteAsJsonAsync(new ChallengeResponse(true, c.Challenge, c.ExpiresAt, c.DeviceToken),
            LoginJson.Default.ChallengeResponse, cancellationToken: ct),
        Succeeded s => Send.OkAsync(new Response(s.Token, s.Session.ExpiresAt, s.User.ToView(), s.DeviceToken), ct),
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
                AppendDeviceCookie(c.DeviceToken);
                // The challenge rides in a short-lived HttpOnly cookie, never in a URL.
                HttpContext.Response.Cookies.Append(SecondFactorCookie(HttpContext.Request), c.Challenge, SessionCookie.Options(HttpContext.Request, c.ExpiresAt));
                return Layout.RedirectAfterPostAsync(HttpContext, "/login/2fa");
            case Succeeded s:
                AppendDeviceCookie(s.DeviceToken);
                SessionCookie.Append(HttpContext, s.Token, s.Session.ExpiresAt);
                return Layout.RedirectAfterPostAsync(HttpContext, "/");
            default: // Rejected
                return FormAsync(req.Username, ["Invalid username or password."], StatusCodes.Status401Unauthorized);
        }
    }

    void AppendDeviceCookie(string deviceToken) =>
        HttpContext.Response.Cookies.Append(Devices.CookieName(HttpContext.Request), deviceToken, Devices.CookieOptions(HttpContext.Request));

    Task FormAsync(string username, IEnumerable<string> errors, int status) =>
        Layout.SendAsync(HttpContext, "Sign in", Fragments.Form(HttpContext, username, errors, registration.Mode), status);
}
