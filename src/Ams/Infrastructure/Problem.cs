
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Extensions.Options;

namespace Ams.Infrastructure;

/// <summary>RFC 9457 problem responses for everything that is not a validation failure.</summary>
public static class Problem
{
    public static async Task WriteAsync(HttpContext http, int status, string title, string? detail = null, TimeSpan? retryAfter = null)
    {
        http.Response.StatusCode = status;
        if (retryAfter is { } wait) RetryAfter(http, wait);
        var writer = http.RequestServices.GetRequiredService<IProblemDetailsService>();
        await writer.WriteAsync(new ProblemDetailsContext
        {
            HttpContext = http,
            ProblemDetails = new ProblemDetails { Status = status, Title = title, Detail = detail },
        });
    }

    /// <summary>Whole seconds, never 0: a client told "0" retries at once and is refused again.</summary>
    public static void RetryAfter(HttpContext http, TimeSpan wait) =>
        http.Response.Headers.RetryAfter = Math.Max(1, (long)Math.Ceiling(wait.TotalSeconds)).ToString(System.Globalization.CultureInfo.InvariantCulture);
}

public static class NotFound
{
    /// <summary>The one 404 for anything about a conversation: missing and forbidden look the same.</summary>
    public static Task ConversationAsync(HttpContext http) => Layout.WantsPage(http)
        ? Layout.SendErrorPageAsync(http, StatusCodes.Status404NotFound, "Conversation not found",
            "It does not exist, or you are not a member of it.")
        : Problem.WriteAsync(http, StatusCodes.Status404NotFound, "Conversation not found");

    /// <summary>A message that does not exist, or that the caller cannot see.</summary>
    public static Task MessageAsync(HttpContext http) => Problem.WriteAsync(http, StatusCodes.Status404NotFound, "Message not found");
}

/// <summary>How unhandled failures become problem responses: no exception text, ever.</summary>
public static class ProblemResponses
{
    /// <summary>RFC 9457 bodies for every error the app or ASP.NET writes, in application/problem+json always.</summary>
    public static IHostApplicationBuilder AddProblemResponses(this IHostApplicationBuilder builder)
    {
        // Before ASP.NET's own writer, so that it writes them all: that one answered first whenever a
        // request accepted JSON, without FastEndpoints' charset, and the same API sent two Content-Types.
        builder.Services.AddSingleton<IProblemDetailsWriter, ProblemJsonWriter>();
        builder.Services.AddProblemDetails(o => o.CustomizeProblemDetails = Customize);
        builder.Services.AddExceptionHandler<ErrorPages>();
        return builder;
    }

    /// <summary>
    /// A browser navigating to a page whose request met an outage (MariaDB given up on, Redis down)
    /// gets a page of the app, as when the circuit is already open, not the API's problem JSON.
    /// </summary>
    sealed class ErrorPages : Microsoft.AspNetCore.Diagnostics.IExceptionHandler
    {
        public async ValueTask<bool> TryHandleAsync(HttpContext http, Exception exception, CancellationToken ct)
        {
            // The exception handler has set the status StatusFor gives.
            if (http.Response.StatusCode != StatusCodes.Status503ServiceUnavailable || !Layout.WantsErrorPage(http)) return false;
            Problem.RetryAfter(http, TimeSpan.FromSeconds(5));
            await Layout.SendErrorPageAsync(http, StatusCodes.Status503ServiceUnavailable, "Service temporarily unavailable",
                exception is MariaDbNotAnsweringException or MySqlConnector.MySqlException
                    ? MariaDbCircuitMiddleware.NotAnswering
                    : "A service this page needs is not answering. Try again in a moment.");
            return true;
        }
    }

    public static int StatusFor(Exception exception) => exception switch
    {
        BadHttpRequestException bad => bad.StatusCode,
        PasswordHashingBusyException => StatusCodes.Status503ServiceUnavailable,
        StackExchange.Redis.RedisException or MySqlConnector.MySqlException or MySqlConnector.MySqlEndOfStreamException
            or MariaDbNotAnsweringException or TimeoutException or ConflictRetry.StillConflictingException => StatusCodes.Status503ServiceUnavailable,
        _ => StatusCodes.Status500InternalServerError,
    };

    public static void Customize(ProblemDetailsContext context)
    {
        var problem = context.ProblemDetails;
        problem.Extensions["traceId"] = context.HttpContext.TraceIdentifier;
        problem.Instance ??= context.HttpContext.Request.Path;
        // ASP.NET's own writer knows no type for some statuses (429 among them); the documented schema requires one.
        if (problem.Type is null && problem.Status is { } status && ProblemJsonWriter.Defaults.TryGetValue(status, out var known)) problem.Type = known.Type;
        // ASP.NET's own writer (it answers first when the request accepts JSON) types a 422 by RFC 4918, WebDAV's; api.md promises RFC 9110's section.
        if (problem.Status == StatusCodes.Status422UnprocessableEntity) problem.Type = ProblemJsonWriter.Defaults[StatusCodes.Status422UnprocessableEntity].Type;
        switch (problem.Status)
        {
            case StatusCodes.Status503ServiceUnavailable when context.Exception is PasswordHashingBusyException:
                problem.Title = "Server busy";
                problem.Detail = "Too many password checks are running. Try again shortly.";
                context.HttpContext.Response.Headers.RetryAfter = "2";
                break;
            case StatusCodes.Status503ServiceUnavailable when context.Exception is ReplicaShortException:
                problem.Title = "Service temporarily unavailable";
                problem.Detail = "Redis took the change on its master, but no replica confirmed it in time (a failover may be under way). Try again shortly.";
                context.HttpContext.Response.Headers.RetryAfter = "5";
                break;
            case StatusCodes.Status503ServiceUnavailable when context.Exception is ConflictRetry.StillConflictingException:
                problem.Title = "Service temporarily unavailable";
                problem.Detail = "Other writes to the same data kept conflicting with this one, and it was not stored. Try again shortly.";
                context.HttpContext.Response.Headers.RetryAfter = "1";
                break;
            case StatusCodes.Status503ServiceUnavailable when context.Exception is not null:
                problem.Title = "Service temporarily unavailable";
                problem.Detail = "A backing service is unreachable. Try again shortly.";
                context.HttpContext.Response.Headers.RetryAfter = "5";
                break;
            case StatusCodes.Status415UnsupportedMediaType:
                // Routing's own 415 (a body in a media type no endpoint of the route takes) comes from an
                // endpoint of its own, which does not know the one the call wants.
                problem.Detail ??= "Send the request body as application/json, or as multipart/form-data for a file upload.";
                break;
            case StatusCodes.Status413PayloadTooLarge:
                // The server's own 413 (Kestrel's limit); an endpoint's own 413 keeps its title.
                // (Both writers' defaults: ASP.NET's own says "Content Too Large", the reason phrase "Payload Too Large".)
                if (problem.Title is null || problem.Title == ReasonPhrases.GetReasonPhrase(StatusCodes.Status413PayloadTooLarge)
                    || problem.Title == ProblemJsonWriter.Defaults[StatusCodes.Status413PayloadTooLarge].Title)
                    problem.Title = "Request body too large";
                problem.Detail ??= $"Request bodies are limited to {RequestLimits.MaxBodyBytes / 1024} KiB.";
                break;
        }
    }
}

/// <summary>
/// Writes every problem as <c>application/problem+json</c>, whatever the request's Accept header
/// says. ASP.NET's own writer declines when Accept names neither JSON nor */* (an EventSource's
/// <c>text/event-stream</c>, an image, XML), and a problem nobody can write becomes a 500.
/// </summary>
public sealed class ProblemJsonWriter(IOptions<ProblemDetailsOptions> options, IOptions<Microsoft.AspNetCore.Http.Json.JsonOptions> json) : IProblemDetailsWriter
{
    // ASP.NET's defaults for the statuses it knows, so the bodies stay what they were.
    internal static readonly Dictionary<int, (string Type, string Title)> Defaults = new()
    {
        [400] = ("https://tools.ietf.org/html/rfc9110#section-15.5.1", "Bad Request"),
        [401] = ("https://tools.ietf.org/html/rfc9110#section-15.5.2", "Unauthorized"),
        [403] = ("https://tools.ietf.org/html/rfc9110#section-15.5.4", "Forbidden"),
        [404] = ("https://tools.ietf.org/html/rfc9110#section-15.5.5", "Not Found"),
        [405] = ("https://tools.ietf.org/html/rfc9110#section-15.5.6", "Method Not Allowed"),
        [406] = ("https://tools.ietf.org/html/rfc9110#section-15.5.7", "Not Acceptable"),
        [408] = ("https://tools.ietf.org/html/rfc9110#section-15.5.9", "Request Timeout"),
        [409] = ("https://tools.ietf.org/html/rfc9110#section-15.5.10", "Conflict"),
        [412] = ("https://tools.ietf.org/html/rfc9110#section-15.5.13", "Precondition Failed"),
        [413] = ("https://tools.ietf.org/html/rfc9110#section-15.5.14", "Content Too Large"),
        [415] = ("https://tools.ietf.org/html/rfc9110#section-15.5.16", "Unsupported Media Type"),
        [416] = ("https://tools.ietf.org/html/rfc9110#section-15.5.17", "Range Not Satisfiable"),
        [422] = ("https://tools.ietf.org/html/rfc9110#section-15.5.21", "Unprocessable Entity"),
        [426] = ("https://tools.ietf.org/html/rfc9110#section-15.5.22", "Upgrade Required"),
        // Not in RFC 9110: its own RFC. Without a type a client reads about:blank, whose title is the status phrase.
        [429] = ("https://tools.ietf.org/html/rfc6585#section-4", "Too Many Requests"),
        [500] = ("https://tools.ietf.org/html/rfc9110#section-15.6.1", "An error occurred while processing your request."),
        [501] = ("https://tools.ietf.org/html/rfc9110#section-15.6.2", "Not Implemented"),
        [502] = ("https://tools.ietf.org/html/rfc9110#section-15.6.3", "Bad Gateway"),
        [503] = ("https://tools.ietf.org/html/rfc9110#section-15.6.4", "Service Unavailable"),
        [504] = ("https://tools.ietf.org/html/rfc9110#section-15.6.5", "Gateway Timeout"),
    };

    public bool CanWrite(ProblemDetailsContext context) => true;

    public ValueTask WriteAsync(ProblemDetailsContext context)
    {
        var http = context.HttpContext;
        var problem = context.ProblemDetails;
        problem.Status ??= http.Response.StatusCode;
        if (Defaults.TryGetValue(problem.Status.Value, out var known))
        {
            problem.Type ??= known.Type;
            problem.Title ??= known.Title;
        }
        problem.Title ??= ReasonPhrases.GetReasonPhrase(problem.Status.Value);
        options.Value.CustomizeProblemDetails?.Invoke(context);
        return new ValueTask(http.Response.WriteAsJsonAsync(problem, json.Value.SerializerOptions.GetTypeInfo(typeof(ProblemDetails)),
            // With the charset FastEndpoints gives its own (its 400s): one Content-Type for every problem,
            // for a client that compares it whole (an outside check saw both forms).
            "application/problem+json; charset=utf-8", http.RequestAborted));
    }
}
