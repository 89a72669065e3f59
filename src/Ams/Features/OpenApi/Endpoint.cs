using Ams.Infrastructure;
using FastEndpoints;

namespace Ams.Features.OpenApi;

/// <summary>
/// <c>GET /openapi.json</c>: the OpenAPI 3.1 document of every <c>/api/</c> call, no authentication.
/// The binary cannot generate it (NSwag needs reflection the AOT build does not have), so it serves
/// <c>docs/openapi.json</c> as embedded at build time; <c>OpenApiTests</c> regenerates that file from
/// the endpoints and fails when the two differ.
/// </summary>
public sealed class Endpoint : EndpointWithoutRequest
{
    static readonly Lazy<byte[]> Document = new(() =>
    {
        using var stream = typeof(Endpoint).Assembly.GetManifestResourceStream("Ams.openapi.json")
            ?? throw new InvalidOperationException("The OpenAPI document is not embedded in the binary.");
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        return copy.ToArray();
    });

    public override void Configure()
    {
        Get("/openapi.json");
        AllowAnonymous();
        Description(b => b.WithMetadata(new WithoutMariaDb()));
    }

    public override Task HandleAsync(CancellationToken ct)
    {
        HttpContext.Response.ContentType = "application/json";
        HttpContext.Response.ContentLength = Document.Value.Length;
        return HttpContext.Response.Body.WriteAsync(Document.Value, ct).AsTask();
    }
}
