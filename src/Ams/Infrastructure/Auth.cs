using System.Security.Claims;
using System.Text.Encodings.Web;
using Microsoft.AspNetCore.Authentication;
using Microsoft.Extensions.Options;

namespace Ams.Infrastructure;

/// <summary>
/// One scheme for both clients: API callers send <c>Authorization: Bearer</c>, the browser
/// sends the session cookie. Both resolve to the same Redis session.
/// </summary>
public sealed class SessionAuthentication(
    IOptionsMonitor<AuthenticationSchemeOptions> options, ILoggerFactory logger, UrlEncoder encoder, SessionStore sessions)
    : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
{
    public const string SchemeName = "session";
    public const string SessionIdClaim = "sid";

    protected override async Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        var token = BearerToken(Request) ?? Request.Cookies[SessionCookie.Name(Request)];
        if (string.IsNullOrEmpty(token)) return AuthenticateResult.NoResult();
        var session = await sessions.FindAsync(token);
        if (session is null) return AuthenticateResult.Fail("The session is unknown, expired or revoked.");
        Context.Items[typeof(Session)] = session;
        var identity = new ClaimsIdentity(
            [
                new Claim(ClaimTypes.NameIdentifier, session.UserId.ToString(System.Globalization.CultureInfo.InvariantCulture)),
                new Claim(SessionIdClaim, session.Id),
            ],
            SchemeName);
        return AuthenticateResult.Success(new AuthenticationTicket(new ClaimsPrincipal(identity), SchemeName));
    }

    protected override Task HandleChallengeAsync(AuthenticationProperties properties)
    {
        Response.Headers.WWWAuthenticate = "Bearer";
        return Problem.WriteAsync(Context, StatusCodes.Status401Unauthorized, "Authentication required",
            "Send a valid session token as 'Authorization: Bearer <token>' or sign in.");
    }

    protected override Task HandleForbiddenAsync(AuthenticationProperties properties) =>
        Problem.WriteAsync(Context, StatusCodes.Status403Forbidden, "Forbidden");

    public static string? BearerToken(HttpRequest request)
    {
        var header = request.Headers.Authorization.ToString();
        return header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase) ? header["Bearer ".Length..].Trim() : null;
    }
}

public static class SessionCookie
{
    // The __Host- prefix makes browsers refuse the cookie unless it is Secure, host-only and
    // Path=/, which only works over HTTPS; plain-HTTP development uses the bare name.
    public static string Name(HttpRequest request) => request.IsHttps ? "__Host-ams_session" : "ams_session";

    public static void Append(HttpContext http, string token, DateTimeOffset expires) =>
        http.Response.Cookies.Append(Name(http.Request), token, Options(http.Request, expires));

    public static void Delete(HttpContext http) =>
        http.Response.Cookies.Delete(Name(http.Request), Options(http.Request, null));

    public static CookieOptions Options(HttpRequest request, DateTimeOffset? expires) => new()
    {
        HttpOnly = true,
        Secure = request.IsHttps,
        SameSite = SameSiteMode.Strict,
        Path = "/",
        Expires = expires,
        IsEssential = true,
    };
}

public static class SessionPrincipal
{
    public static long UserId(this ClaimsPrincipal user) =>
        long.Parse(user.FindFirstValue(ClaimTypes.NameIdentifier)!, System.Globalization.CultureInfo.InvariantCulture);

    public static Session Session(this HttpContext http) => (Session)http.Items[typeof(Session)]!;
}

public static class Accounts
{
    /// <summary>Sessions, passwords, sign-in challenges and the one authentication scheme built on them.</summary>
    public static IHostApplicationBuilder AddAccounts(this IHostApplicationBuilder builder)
    {
        builder.Services.AddSingleton(builder.Configuration.GetSection("Sessions").Get<SessionLifetime>() ?? new());
        builder.Services.AddSingleton<SessionStore>();
        builder.Services.AddSingleton(new Passwords(builder.Configuration));   // built here so that a bad Passwords:* setting stops the start
        builder.Services.AddSingleton<Challenges>();
        builder.Services.AddAuthentication(SessionAuthentication.SchemeName)
            .AddScheme<AuthenticationSchemeOptions, SessionAuthentication>(SessionAuthentication.SchemeName, null);
        builder.Services.AddAuthorization();
        return builder;
    }
}
