using FastEndpoints;
using Htmx;

namespace Ams.Infrastructure;

/// <summary>The page shell every server-rendered page shares.</summary>
public static class Layout
{
    public static string Page(string title, Html main, bool chat = false) => Html.Of($"""
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
        {(chat ? Html.Raw("""<script src="/app.js" defer></script>""") : Html.Empty)}
        </head>
        <body>
        <header><a href="/" class="brand">AMS</a></header>
        <main{(chat ? Html.Raw(" class=\"wide\"") : Html.Empty)}>
        {main}
        </main>
        </body>
        </html>
        """).Value;

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
