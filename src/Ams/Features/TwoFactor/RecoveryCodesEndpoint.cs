using Ams.Infrastructure;
using FastEndpoints;

namespace Ams.Features.TwoFactor;

/// <summary>New recovery codes for a current TOTP code and the password; the old ones stop working.</summary>
public sealed class RecoveryCodesEndpoint(Operations operations) : Endpoint<DisableRequest, RecoveryCodesResponse>
{
    public override void Configure()
    {
        Post("/api/2fa/recovery-codes");
    }

    public override async Task HandleAsync(DisableRequest req, CancellationToken ct)
    {
        var outcome = await operations.RegenerateAsync(HttpContext.Session(), req.Password, req.Code);
        if (outcome is Operations.Done done) await Send.OkAsync(new RecoveryCodesResponse(done.RecoveryCodes!), ct);
        else await Operations.WriteFailureAsync(HttpContext, outcome);
    }
}
