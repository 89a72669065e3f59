using Ams.Infrastructure;
using FastEndpoints;

namespace Ams.Features.TwoFactor;

/// <summary>Turns 2FA off; needs the password and a current code (or a recovery code).</summary>
public sealed class DisableEndpoint(Operations operations) : Endpoint<DisableRequest>
{
    public override void Configure()
    {
        Post("/api/2fa/disable");
    }

    public override async Task HandleAsync(DisableRequest req, CancellationToken ct)
    {
        var outcome = await operations.DisableAsync(HttpContext.Session(), req.Password, req.Code);
        if (outcome is Operations.Done) await Send.NoContentAsync(ct);
        else await Operations.WriteFailureAsync(HttpContext, outcome);
    }
}
