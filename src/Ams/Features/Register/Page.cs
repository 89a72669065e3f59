using Ams.Infrastructure;
using FastEndpoints;

namespace Ams.Features.Register;

public sealed class Page(RegistrationLimits limits) : EndpointWithoutRequest
{
    public override void Configure()
    {
        Get("/register");
        AllowAnonymous();
        Description(b => b.WithMetadata(new WithoutMariaDb()));
    }

    public override Task HandleAsync(CancellationToken ct) =>
        Send.StringAsync(Layout.Page("Register", Fragments.Form(HttpContext, null, [], limits.Mode)), 200, "text/html; charset=utf-8", ct);
}
