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
        Session? session;
        try
        {
            session = await sessions.FindAsync(token);
        }
        catch (Exception e) when (e is StackExchange.Redis.RedisException or TimeoutException
                                  && Context.GetEndpoint()?.Metadata.GetMetadata<SignOutEndpoint>() is not null)
        {
            // Signing out never waits for Redis: the endpoint revokes the token it was given either way.
            Context.Items[UnverifiedKey] = token;
            return AuthenticateResult.NoResult();
        }
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

    const string UnverifiedKey = "ams:unverified-token";

    /// <summary>On a <see cref="SignOutEndpoint"/>: the token Redis could not check (an outage), or null.</summary>
    public static string? UnverifiedToken(HttpContext http) => http.Items[UnverifiedKey] as string;

    public static string? BearerToken(HttpRequest request)
    {
        var header = request.Headers.Authorization.ToString();
        return header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase) ? header["Bearer ".Length..].Trim() : null;
    }
}

/// <summary>Endpoint metadata: signing out, which must work even when Redis cannot check the session.</summary>
public sealed class SignOutEndpoint;

public static class SessionCookie
{
    // The __Host- prefix makes browsers refuse the cookie unless it is Secure, host-only and
    // Path=/, which only works over HTTPS; plain-HTTP development uses the bare name.
    public static string Name(HttpRequest request) => request.IsHttps ? "__Host-ams_session" : "ams_session";

    /// <summary>
    /// Sets the session cookie. A cookie it replaces (signing in again in the same browser) is
    /// a session of its own that nobody can use any more: it is revoked before the response starts.
    /// </summary>
    public static void Append(HttpContext http, string token, DateTimeOffset expires)
    {
        if (http.Request.Cookies[Name(http.Request)] is { Length: > 0 } replaced && replaced != token)
        {
            var sessions = http.RequestServices.GetRequiredService<SessionStore>();
            http.Response.OnStarting(() => sessions.RevokeTokenAsync(replaced));
        }
        http.Response.Cookies.Append(Name(http.Request), token, Options(http.Request, expires));
    }

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
        builder.Services.AddSingleton<AccessTokenStore>();
        builder.Services.AddSingleton<SessionStore>();
        builder.Services.AddHostedService<SessionChannel>();   // after AddRedis (Program.cs): stops before RedisClose
        builder.Services.AddSingleton<SecurityEvents>();
        builder.Services.AddSingleton(new Passwords(builder.Configuration));   // built here so that a bad Passwords:* setting stops the start
        builder.Services.AddSingleton<Challenges>();
        builder.Services.AddAuthentication(SessionAuthentication.SchemeName)
            .AddScheme<AuthenticationSchemeOptions, SessionAuthentication>(SessionAuthentication.SchemeName, null);
        builder.Services.AddAuthorization();
        return builder;
    }
}
