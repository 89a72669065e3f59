using FastEndpoints;
using Htmx;
using Microsoft.AspNetCore.Diagnostics;

namespace Ams.Infrastructure;

/// <summary>The page shell every server-rendered page shares.</summary>
public static class Layout
{
    public static string Page(string title, Html main, bool chat = false, string skipTo = "#main") => Html.Of($"""
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <meta name="color-scheme" content="light dark">
        <title>{title} · AMS</title>
        <link rel="icon" href="data:,">
        <link rel="stylesheet" href="/app.css">
        <script src="/htmx.min.js" defer></script>
        <script src="/forms.js" defer></script>
        {(chat ? Html.Raw("""<script src="/app.js" defer></script>""") : Html.Empty)}
        </head>
        <body{(chat ? Html.Raw(" class=\"app\"") : Html.Empty)}>
        <a class="skip" href="{skipTo}">Skip to {(skipTo == "#body" ? "the message composer" : "the content")}</a>
        <header><a href="/" class="brand">AMS</a></header>
        <main id="main" tabindex="-1"{(chat ? Html.Raw(" class=\"wide\"") : Html.Empty)}>
        {main}
        </main>
        </body>
        </html>
        """).Value;

    /// <summary>
    /// Whether an error should be a page rather than problem JSON: a browser navigating (a GET of a
    /// non-API path that is neither htmx's nor app.js's fetch of a fragment).
    /// </summary>
    public static bool WantsPage(HttpContext http) =>
        !http.Request.Path.StartsWithSegments("/api") && HttpMethods.IsGet(http.Request.Method) && !http.Request.IsHtmx()
        && !http.Request.Headers.ContainsKey("X-Requested-With");

    /// <summary>An error as a page of the app: what happened, and the way back.</summary>
    public static Task SendErrorPageAsync(HttpContext http, int status, string title, string text) =>
        http.Response.SendStringAsync(Page(title, Html.Of($"""
            <section class="error-page">
              <h1>{title}</h1>
              <p>{text}</p>
              <p><a href="/">Back to your chats</a></p>
            </section>
            """)), status, "text/html; charset=utf-8", http.RequestAborted);

    /// <summary>
    /// The body of an error response that has none yet: a page for a browser navigating to a
    /// non-API path, otherwise ASP.NET's problem details.
    /// </summary>
    public static Task StatusCodePageAsync(StatusCodeContext context)
    {
        var http = context.HttpContext;
        // Routing's 405 names the methods its routes have: every GET route answers HEAD too (UseHeadAsGet).
        if (http.Response.StatusCode == StatusCodes.Status405MethodNotAllowed && http.Response.Headers.Allow.ToString() is var allow
            && allow.Split(',', StringSplitOptions.TrimEntries) is var methods && methods.Contains("GET") && !methods.Contains("HEAD"))
            http.Response.Headers.Allow = allow + ", HEAD";
        if (WantsErrorPage(http))
            return http.Response.StatusCode == StatusCodes.Status404NotFound
                ? SendErrorPageAsync(http, 404, "Page not found", "There is nothing at this address.")
                : SendErrorPageAsync(http, http.Response.StatusCode, "Something went wrong",
                    Microsoft.AspNetCore.WebUtilities.ReasonPhrases.GetReasonPhrase(http.Response.StatusCode));
        return DefaultStatusCodePages.HandleAsync(context);
    }

    /// <summary>A browser navigating (<see cref="WantsPage"/>) that asks for HTML: an error without words of its own gets a page.</summary>
    public static bool WantsErrorPage(HttpContext http) =>
        WantsPage(http) && http.Request.Headers.Accept.ToString().Contains("text/html", StringComparison.OrdinalIgnoreCase);

    static readonly StatusCodePagesOptions DefaultStatusCodePages = new();

    /// <summary>htmx swaps the fragment in place; a plain form post gets the whole page around it.</summary>
    public static string PageOrFragment(HttpContext http, string title, Html fragment) =>
        http.Request.IsHtmx() ? fragment.Value : Page(title, fragment);

    /// <summary>A form's answer that is not a redirect: the form again, with its errors or its result.</summary>
    public static Task SendAsync(HttpContext http, string title, Html fragment, int status = StatusCodes.Status200OK) =>
        http.Response.SendStringAsync(PageOrFragment(http, title, fragment), status, "text/html; charset=utf-8", http.RequestAborted);

    /// <summary>The hidden anti-forgery field every form carries.</summary>
    public static Html CsrfField(HttpContext http) =>
        Html.Of($"""<input type="hidden" name="{Antiforgery.FormField}" value="{Antiforgery.TokenFor(http)}">""");

    public static Html Errors(IEnumerable<string> messages)
    {
        var items = messages.Select(m => Html.Of($"<li>{m}</li>")).ToList();
        return items.Count == 0 ? Html.Empty : Html.Of($"""<ul class="errors" role="alert">{Html.Join(items)}</ul>""");
    }

    /// <summary>
    /// After a successful form post: htmx follows HX-Redirect, a plain form post follows 303.
    /// </summary>
    public static Task RedirectAfterPostAsync(HttpContext http, string location)
    {
        if (http.Request.IsHtmx())
        {
            http.Response.StatusCode = StatusCodes.Status200OK;
            http.Response.Headers["HX-Redirect"] = location;
        }
        else
        {
            http.Response.StatusCode = StatusCodes.Status303SeeOther;
            http.Response.Headers.Location = location;
        }
        return http.Response.StartAsync(http.RequestAborted);
    }
}
