using Ams.Infrastructure;
using FastEndpoints;

namespace Ams.Features.CreateConversation;

/// <summary>The empty "new chat" form, which the chat page loads into its sidebar.</summary>
public sealed class Page : EndpointWithoutRequest
{
    public override void Configure()
    {
        Get("/c/new");
    }

    public override Task HandleAsync(CancellationToken ct) => Layout.SendAsync(HttpContext, "New chat", Fragments.Form(HttpContext, []));
}
