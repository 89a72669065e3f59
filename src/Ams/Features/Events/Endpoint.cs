using Ams.Infrastructure.Messaging;
using FastEndpoints;

namespace Ams.Features.Events;

/// <summary>The caller's events as JSON server-sent events (api.md "Live events").</summary>
public sealed class Endpoint(Stream stream) : EndpointWithoutRequest
{
    public override void Configure()
    {
        Get("/api/events");
    }

    public override Task HandleAsync(CancellationToken ct) => stream.RunAsync(HttpContext, StreamFormat.Json, ct);
}

/// <summary>The same events as HTML fragments for the browser (htmx's SSE extension swaps them in).</summary>
public sealed class FragmentEndpoint(Stream stream) : EndpointWithoutRequest
{
    public override void Configure()
    {
        Get("/events");
    }

    public override Task HandleAsync(CancellationToken ct) => stream.RunAsync(HttpContext, StreamFormat.Html, ct);
}
