namespace Ams.Infrastructure;

public static class SecurityHeaders
{
    // No inline script or style anywhere: htmx and the stylesheet are served from 'self'.
    const string ContentSecurityPolicy =
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

    static readonly object OwnPolicy = new();

    /// <summary>
    /// Serves this response under <paramref name="policy"/> instead of the pages' policy. Only for
    /// stricter policies: a user's file is served with <c>sandbox</c>, so it can never run as a page of the app.
    /// </summary>
    public static void UseStricterPolicy(HttpContext http, string policy) => http.Items[OwnPolicy] = policy;

    /// <summary>
    /// Set when the response starts, so error responses (whose headers the exception handler
    /// clears) get them too. Everything is <c>no-store</c> unless a static file says otherwise.
    /// </summary>
    public static IApplicationBuilder UseSecurityHeaders(this IApplicationBuilder app) => app.Use((http, next) =>
    {
        http.Response.OnStarting(() =>
        {
            var headers = http.Response.Headers;
            // A response may bring a stricter policy of its own (a download: "sandbox"); pages get the app's.
            if (http.Items[OwnPolicy] is not string own) headers.ContentSecurityPolicy = ContentSecurityPolicy;
            else headers.ContentSecurityPolicy = own;
            headers.XContentTypeOptions = "nosniff";
            headers.XFrameOptions = "DENY";
            headers["Referrer-Policy"] = "no-referrer";
            headers["Cross-Origin-Opener-Policy"] = "same-origin";
            headers["Cross-Origin-Resource-Policy"] = "same-origin";
            headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=()";
            if (string.IsNullOrEmpty(headers.CacheControl)) headers.CacheControl = "no-store";
            // HSTS only means something on a secure response (RFC 6797 §7.2: ignored over HTTP).
            if (http.Request.IsHttps) headers.StrictTransportSecurity = "max-age=31536000; includeSubDomains";
            return Task.CompletedTask;
        });
        return next(http);
    });
}
