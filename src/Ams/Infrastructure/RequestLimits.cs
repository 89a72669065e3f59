namespace Ams.Infrastructure;

public static class RequestLimits
{
    public const long MaxBodyBytes = 64 * 1024;

    /// <summary>
    /// Kestrel enforces <see cref="MaxBodyBytes"/> while reading (chunked bodies included);
    /// this answers a declared oversized body before anything reads it, under any server.
    /// </summary>
    public static IApplicationBuilder UseBodySizeLimit(this IApplicationBuilder app) => app.Use(async (http, next) =>
    {
        if (http.Request.ContentLength > MaxBodyBytes)
        {
            await Problem.WriteAsync(http, StatusCodes.Status413PayloadTooLarge, "Request body too large",
                $"Request bodies are limited to {MaxBodyBytes / 1024} KiB.");
            return;
        }
        await next(http);
    });
}
