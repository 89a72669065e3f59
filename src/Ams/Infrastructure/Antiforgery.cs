using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text;

namespace Ams.Infrastructure;

/// <summary>
/// Anti-forgery for cookie-authenticated writes, without server state: the token is an HMAC
/// of a secret the browser holds in an HttpOnly cookie (the session token once signed in, a
/// random pre-session value before). A cross-site page can make the browser send the cookie
/// but cannot read it, so it cannot compute the token. Works on every node with no shared key.
/// </summary>
public static class Antiforgery
{
    public const string HeaderName = "X-CSRF-Token";
    public const string FormField = "_csrf";
    static readonly byte[] Purpose = "ams-csrf-v1"u8.ToArray();

    static string PreSessionCookieName(HttpRequest request) => request.IsHttps ? "__Host-ams_csrf" : "ams_csrf";

    /// <summary>The token to embed in the page being rendered (creates the pre-session cookie when needed).</summary>
    public static string TokenFor(HttpContext http)
    {
        var binding = BindingSecret(http.Request);
        if (binding is null)
        {
            if (http.Items[Purpose] is string pending) return Token(pending);
            binding = Base64Url.EncodeToString(RandomNumberGenerator.GetBytes(32));
            http.Items[Purpose] = binding;
            http.Response.Cookies.Append(PreSessionCookieName(http.Request), binding, SessionCookie.Options(http.Request, null));
        }
        return Token(binding);
    }

    public static async Task<bool> IsValidAsync(HttpContext http)
    {
        var binding = BindingSecret(http.Request);
        if (binding is null) return false;
        string? presented = http.Request.Headers[HeaderName];
        // A streamed upload's body is the file: it is never read (and buffered) here, so its token must be in the header.
        if (string.IsNullOrEmpty(presented) && http.Request.HasFormContentType && http.GetEndpoint()?.Metadata.GetMetadata<StreamedBody>() is null)
            presented = (await http.Request.ReadFormAsync(http.RequestAborted))[FormField];
        if (string.IsNullOrEmpty(presented)) return false;
        return CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(Token(binding)), Encoding.UTF8.GetBytes(presented));
    }

    /// <summary>
    /// Checks every state-changing request that could ride on the browser's cookies. Bearer
    /// requests carry their credential explicitly and need no token; so do anonymous JSON API
    /// calls, which a cross-site form cannot make.
    /// </summary>
    public static IApplicationBuilder UseAntiforgeryCheck(this IApplicationBuilder app) => app.Use((http, next) =>
    {
        var request = http.Request;
        var safe = HttpMethods.IsGet(request.Method) || HttpMethods.IsHead(request.Method) || HttpMethods.IsOptions(request.Method);
        var needsToken = !safe
            && Routed(http)
            && SessionAuthentication.BearerToken(request) is null
            && (request.Cookies.ContainsKey(SessionCookie.Name(request)) || !request.Path.StartsWithSegments("/api"));
        // Not async when no token is needed: a pass-through holds no state machine for the
        // request's lifetime (see RequestLimits.UseBodySizeLimit).
        return needsToken ? CheckedAsync(http, next) : next(http);
    });

    /// <summary>
    /// Whether the request reached something that could act on it: without an endpoint it is a
    /// 404, and routing's own endpoint for a method the path does not take is a 405, which a
    /// refusal for want of a token (403) only hid (PUT /login, TRACE /).
    /// </summary>
    static bool Routed(HttpContext http) =>
        http.GetEndpoint() is { } endpoint && endpoint.DisplayName != MethodNotSupportedEndpoint;

    // ASP.NET routing's name for the endpoint that answers 405 (HttpMethodMatcherPolicy).
    const string MethodNotSupportedEndpoint = "405 HTTP Method Not Supported";

    static async Task CheckedAsync(HttpContext http, RequestDelegate next)
    {
        // Defence in depth beside the token: a browser says when another site made the request
        // (Fetch Metadata). Same-site pages (another subdomain) are left to the token alone.
        if (http.Request.Headers["Sec-Fetch-Site"] == "cross-site")
        {
            await Problem.WriteAsync(http, StatusCodes.Status403Forbidden, "Cross-site request refused",
                "Cookie-authenticated writes come from this site's own pages.");
            return;
        }
        if (!await IsValidAsync(http))
        {
            await Problem.WriteAsync(http, StatusCodes.Status403Forbidden, "Anti-forgery token missing or invalid",
                $"Cookie-authenticated writes need the page's token in the {HeaderName} header or the {FormField} form field.");
            return;
        }
        await next(http);
    }

    static string? BindingSecret(HttpRequest request) =>
        request.Cookies[SessionCookie.Name(request)] is { Length: > 0 } session ? session
        : request.Cookies[PreSessionCookieName(request)] is { Length: > 0 } pre ? pre
        : null;

    static string Token(string binding) =>
        Base64Url.EncodeToString(HMACSHA256.HashData(Encoding.UTF8.GetBytes(binding), Purpose));
}
