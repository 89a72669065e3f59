using System.Text.Json;
using System.Text.Json.Serialization;
using Ams.Infrastructure;
using FastEndpoints;

namespace Ams.Features.Version;

public sealed record Response(string Version, string Commit);

/// <summary><c>GET /api/version</c>: what this binary was built from. No authentication.</summary>
public sealed class Endpoint : EndpointWithoutRequest<Response>
{
    public override void Configure()
    {
        Get("/api/version");
        AllowAnonymous();
        ApiDocs.Document(Definition, "The version and commit this binary was built from", b => b.Produces<Response>(StatusCodes.Status200OK).WithMetadata(new WithoutMariaDb()));
    }

    public override Task HandleAsync(CancellationToken ct) => Send.OkAsync(new Response(BuildInfo.Version, BuildInfo.Commit), ct);
}

/// <summary>The slice's API types, serialized by source generation.</summary>
[JsonSourceGenerationOptions(JsonSerializerDefaults.Web)]
[JsonSerializable(typeof(Response))]
sealed partial class VersionJson : JsonSerializerContext;
