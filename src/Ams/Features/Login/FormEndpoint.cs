using Ams.Infrastructure;
using FastEndpoints;
using MySqlConnector;

namespace Ams.Features.Login;

/// <summary>The browser's sign-in form: the same checks as the API, then the session cookie.</summary>
public sealed class FormEndpoint(MySqlDataSource db, Passwords passwords, Throttle throttle, SessionStore sessions, Challenges challenges) : EndpointWithoutRequest
{
    public const string SecondFactorCookie = "ams_2fa_challenge";

    public override void Configure()
    {
        Post("/login");
        AllowAnonymous();
        AllowFormData(urlEncoded: true);
    }

    public override async Task HandleAsync(CancellationToken ct)
    {
        var form = await HttpContext.Request.ReadFormAsync(ct);
        var req = new Request { Username = form["username"].ToString(), Password = form["password"].ToString() };
        var result = await new Validator().ValidateAsync(req, ct);
        if (!result.IsValid)
        {
            await Reply(req.Username, result.Errors.Select(e => e.ErrorMessage), StatusCodes.Status422UnprocessableEntity, ct);
            return;
        }
        switch (await SignIn.AttemptAsync(HttpContext, req, db, passwords, throttle, sessions, challenges, ct))
        {
            case SignIn.Throttled t:
                HttpContext.Response.Headers.RetryAfter = ((long)Math.Ceiling(t.RetryAfter.TotalSeconds)).ToString(System.Globalization.CultureInfo.InvariantCulture);
                await Reply(req.Username, [$"Too many failed sign-ins. Try again in {Math.Ceiling(t.RetryAfter.TotalMinutes)} minutes."], StatusCodes.Status429TooManyRequests, ct);
                break;
            case SignIn.Rejected:
                await Reply(req.Username, ["Invalid username or password."], StatusCodes.Status401Unauthorized, ct);
                break;
            case SignIn.NeedsSecondFactor c:
                // The challenge rides in a short-lived HttpOnly cookie, never in a URL.
                HttpContext.Response.Cookies.Append(SecondFactorCookie, c.Challenge, SessionCookie.Options(HttpContext.Request, c.ExpiresAt));
                await Layout.RedirectAfterPostAsync(HttpContext, "/login/2fa");
                break;
            case SignIn.Succeeded s:
                SessionCookie.Append(HttpContext, s.Token, s.Session.ExpiresAt);
                await Layout.RedirectAfterPostAsync(HttpContext, "/");
                break;
        }
    }

    Task Reply(string username, IEnumerable<string> errors, int status, CancellationToken ct)
    {
        var form = Fragments.Form(HttpContext, username, errors);
        return Send.StringAsync(Layout.PageOrFragment(HttpContext, "Sign in", form), status, "text/html; charset=utf-8", ct);
    }
}
