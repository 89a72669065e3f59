namespace Ams.Infrastructure;

public static class InternalRoutes
{
    // FastEndpoints maps this for its own test helpers in every build, the AOT binary included, and
    // it lists every endpoint's .NET type name to anyone who asks. AMS's tests do not use it.
    const string FastEndpointsTestUrlCache = "/_test_url_cache_";

    /// <summary>Answers 404 (problem details, like any unknown route) for routes no client should reach.</summary>
    public static IApplicationBuilder UseNoInternalRoutes(this IApplicationBuilder app) => app.Use((http, next) =>
    {
        if (!http.Request.Path.Equals(FastEndpointsTestUrlCache, StringComparison.OrdinalIgnoreCase)) return next(http);
        http.Response.StatusCode = StatusCodes.Status404NotFound;
        return Task.CompletedTask;
    });
}
