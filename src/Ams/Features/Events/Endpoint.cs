using Ams.Infrastructure;
using Ams.Infrastructure.Messaging;
using FastEndpoints;

namespace Ams.Features.Events;

/// <summary>The caller's events as JSON server-sent events (api.md "Live events").</summary>
public sealed class Endpoint(Stream stream) : EndpointWithoutRequest
{
    public override void Configure()
    {
        Get("/api/events");
        ApiDocs.Document(Definition, "The caller's live events as server-sent events (docs/api.md, Live events)",
            b => b.Produces(StatusCodes.Status200OK, typeof(string), "text/event-stream")
                .Header("Last-Event-ID", "the id of the last event received (0 to 9223372036854775807; empty is absent): the events after it are replayed first", ApiDocs.EventIdPattern)
                .Query("after", "string", "the same as Last-Event-ID, for clients that cannot set headers", pattern: ApiDocs.EventIdPattern), 400, 429);
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
