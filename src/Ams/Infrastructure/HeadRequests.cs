namespace Ams.Infrastructure;

public static class HeadRequests
{
    static readonly object WasHeadKey = new();

    /// <summary>For a response whose body never ends by itself (an event stream): a HEAD gets the headers and ends.</summary>
    public static bool WasHead(HttpContext http) => http.Items.ContainsKey(WasHeadKey);

    /// <summary>
    /// Every GET route answers HEAD (RFC 9110 §9.3.2 makes it a MUST; uptime monitors, link
    /// checkers and <c>curl -I</c> use it): routing sees GET. The server still knows the request
    /// was HEAD (Kestrel keeps the parsed method, and the method text is all this changes), so it
    /// sends the GET's status and headers and none of the body. Before routing, which must then
    /// be placed after this explicitly.
    /// </summary>
    public static IApplicationBuilder UseHeadAsGet(this IApplicationBuilder app) => app.Use((http, next) =>
    {
        if (HttpMethods.IsHead(http.Request.Method))
        {
            http.Request.Method = HttpMethods.Get;
            http.Items[WasHeadKey] = true;
        }
        return next(http);
    });
}
