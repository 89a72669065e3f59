using Microsoft.AspNetCore.Mvc;

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
    public static Task ConversationAsync(HttpContext http) =>
        Problem.WriteAsync(http, StatusCodes.Status404NotFound, "Conversation not found");
}

/// <summary>How unhandled failures become problem responses: no exception text, ever.</summary>
public static class ProblemResponses
{
    public static int StatusFor(Exception exception) => exception switch
    {
        BadHttpRequestException bad => bad.StatusCode,
        StackExchange.Redis.RedisException or MySqlConnector.MySqlException or TimeoutException => StatusCodes.Status503ServiceUnavailable,
        _ => StatusCodes.Status500InternalServerError,
    };

    public static void Customize(ProblemDetailsContext context)
    {
        var problem = context.ProblemDetails;
        problem.Extensions["traceId"] = context.HttpContext.TraceIdentifier;
        problem.Instance ??= context.HttpContext.Request.Path;
        switch (problem.Status)
        {
            case StatusCodes.Status503ServiceUnavailable when context.Exception is not null:
                problem.Title = "Service temporarily unavailable";
                problem.Detail = "A backing service is unreachable. Try again shortly.";
                context.HttpContext.Response.Headers.RetryAfter = "5";
                break;
            case StatusCodes.Status413PayloadTooLarge:
                problem.Title = "Request body too large";
                problem.Detail ??= $"Request bodies are limited to {RequestLimits.MaxBodyBytes / 1024} KiB.";
                break;
        }
    }
}
