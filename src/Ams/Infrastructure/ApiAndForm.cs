using FastEndpoints;
using Microsoft.AspNetCore.Http.Metadata;

namespace Ams.Infrastructure;

/// <summary>
/// A use case with a browser twin is one endpoint with two routes: the JSON call under
/// <c>/api/</c> and the form post. Both bind the same request DTO (the form through
/// FastEndpoints' form binding), run the same validator and the same handler; only the
/// rendering differs (problem details and JSON, or an HTML fragment and a redirect).
/// </summary>
public static class ApiAndForm
{
    const string FormContentType = "application/x-www-form-urlencoded";

    /// <summary>Call after the routes are declared.</summary>
    public static void Configure(EndpointDefinition endpoint)
    {
        endpoint.AllowFormData(urlEncoded: true);
        // The form re-renders itself with the errors, so validation failures reach the handler;
        // the API route throws them again (FormErrors) for the pipeline's problem details.
        endpoint.DontThrowIfValidationFails();
        // The API route stays JSON-only: a cross-site form must not reach an anonymous API call,
        // which the anti-forgery check lets through because browsers cannot send JSON cross-site.
        endpoint.Options(b => b.Add(e =>
        {
            if (e is not RouteEndpointBuilder { RoutePattern.RawText: { } route } || !IsApiPath(route)) return;
            for (var i = e.Metadata.Count - 1; i >= 0; i--)
                if (e.Metadata[i] is IAcceptsMetadata accepts && accepts.ContentTypes.Contains(FormContentType))
                    e.Metadata.RemoveAt(i);
        }));
    }

    /// <summary>
    /// Validation failures: on the API route thrown for the pipeline's problem details, exactly
    /// as without a form twin; on the form route their messages, to re-render the form with.
    /// Null when the request is valid.
    /// </summary>
    public static string[]? FormErrors<TRequest, TResponse>(this Endpoint<TRequest, TResponse> endpoint) where TRequest : notnull
    {
        if (endpoint.HttpContext.IsApi()) endpoint.ThrowIfAnyErrors();
        return endpoint.ValidationFailed ? endpoint.ValidationFailures.Select(f => f.ErrorMessage).ToArray() : null;
    }

    public static bool IsApi(this HttpContext http) => IsApiPath(http.Request.Path);

    static bool IsApiPath(PathString path) => path.StartsWithSegments("/api");
}
