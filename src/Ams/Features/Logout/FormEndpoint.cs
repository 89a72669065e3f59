using Ams.Infrastructure;
using FastEndpoints;

namespace Ams.Features.Logout;

public sealed class FormEndpoint(SessionStore sessions) : EndpointWithoutRequest
{
    public override void Configure()
    {
        Post("/logout");
        AllowAnonymous();
        AllowFormData(urlEncoded: true);
    }

    public override async Task HandleAsync(CancellationToken ct)
    {
        if (User.Identity?.IsAuthenticated == true) await sessions.RevokeAsync(HttpContext.Session());
        SessionCookie.Delete(HttpContext);
        await Layout.RedirectAfterPostAsync(HttpContext, "/login");
    }
}
