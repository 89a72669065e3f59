using Ams.Infrastructure;
using FastEndpoints;

namespace Ams.Features.Login;

public sealed class Page(Register.RegistrationLimits registration) : EndpointWithoutRequest
{
    public override void Configure()
    {
        Get("/login");
        AllowAnonymous();
        Description(b => b.WithMetadata(new WithoutMariaDb()));
    }

    public override Task HandleAsync(CancellationToken ct)
    {
        var registered = HttpContext.Request.Query["registered"] == "1";
        return Send.StringAsync(Layout.Page("Sign in", Fragments.Form(HttpContext, null, [], registration.Mode, registered)), 200, "text/html; charset=utf-8", ct);
    }
}
