using Ams.Infrastructure;
using FastEndpoints;
using MySqlConnector;

namespace Ams.Features.Login;

public sealed class Endpoint(MySqlDataSource db, Passwords passwords, Throttle throttle, SessionStore sessions, Challenges challenges)
    : Endpoint<Request, Response>
{
    public override void Configure()
    {
        Post("/api/login");
        AllowAnonymous();
    }

    public override async Task HandleAsync(Request req, CancellationToken ct)
    {
        var outcome = await SignIn.AttemptAsync(HttpContext, req, db, passwords, throttle, sessions, challenges, ct);
        switch (outcome)
        {
            case SignIn.Throttled t:
                await Problem.WriteAsync(HttpContext, StatusCodes.Status429TooManyRequests, "Too many failed sign-ins",
                    "Wait before trying again.", t.RetryAfter);
                break;
            case SignIn.Rejected:
                await Problem.WriteAsync(HttpContext, StatusCodes.Status401Unauthorized, "Invalid username or password");
                break;
            case SignIn.NeedsSecondFactor c:
                await HttpContext.Response.WriteAsJsonAsync(new ChallengeResponse(true, c.Challenge, c.ExpiresAt),
                    LoginJson.Default.ChallengeResponse, cancellationToken: ct);
                break;
            case SignIn.Succeeded s:
                await Send.OkAsync(new Response(s.Token, s.Session.ExpiresAt, s.User.ToView()), ct);
                break;
        }
    }
}
