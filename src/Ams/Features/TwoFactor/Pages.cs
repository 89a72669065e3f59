using Ams.Infrastructure;
using Ams.Infrastructure.Crypto;
using FastEndpoints;
using MySqlConnector;

namespace Ams.Features.TwoFactor;

/// <summary>The browser's second login step: the challenge is in an HttpOnly cookie set by the password step.</summary>
public sealed class SecondStepPage : EndpointWithoutRequest
{
    public override void Configure()
    {
        Get("/login/2fa");
        AllowAnonymous();
    }

    public override Task HandleAsync(CancellationToken ct) =>
        Send.StringAsync(Layout.Page("Two-factor authentication", Fragments.SecondStep(HttpContext, [])), 200, "text/html; charset=utf-8", ct);
}

public sealed class SecondStepForm(MySqlDataSource db, Totp totp, Challenges challenges, SessionStore sessions) : EndpointWithoutRequest
{
    public override void Configure()
    {
        Post("/login/2fa");
        AllowAnonymous();
        AllowFormData(urlEncoded: true);
    }

    public override async Task HandleAsync(CancellationToken ct)
    {
        var form = await HttpContext.Request.ReadFormAsync(ct);
        var challenge = HttpContext.Request.Cookies[Login.FormEndpoint.SecondFactorCookie] ?? "";
        var outcome = await SecondStep.AttemptAsync(db, totp, challenges, sessions, challenge, form["code"].ToString().Trim(), ct);
        if (outcome is not SecondStep.Succeeded signedIn)
        {
            var (status, message) = outcome switch
            {
                SecondStep.LockedOut => (StatusCodes.Status429TooManyRequests, "Too many wrong codes. Wait and try again."),
                SecondStep.WrongCode => (StatusCodes.Status401Unauthorized, "That code did not work."),
                _ => (StatusCodes.Status401Unauthorized, "This sign-in has expired. Start over with your password."),
            };
            await Send.StringAsync(Layout.PageOrFragment(HttpContext, "Two-factor authentication", Fragments.SecondStep(HttpContext, [message])),
                status, "text/html; charset=utf-8", ct);
            return;
        }
        HttpContext.Response.Cookies.Delete(Login.FormEndpoint.SecondFactorCookie, SessionCookie.Options(HttpContext.Request, null));
        SessionCookie.Append(HttpContext, signedIn.Token, signedIn.Session.ExpiresAt);
        await Layout.RedirectAfterPostAsync(HttpContext, "/");
    }
}
