using Ams.Infrastructure;
using FastEndpoints;

namespace Ams.Features.TwoFactor;

/// <summary>Confirms enrolment with a code from the new authenticator; returns the recovery codes, once.</summary>
public sealed class EnableEndpoint(Operations operations) : Endpoint<CodeRequest, RecoveryCodesResponse>
{
    public override void Configure()
    {
        Post("/api/2fa/enable");
    }

    public override async Task HandleAsync(CodeRequest req, CancellationToken ct)
    {
        var outcome = await operations.EnableAsync(HttpContext.Session(), req.Code);
        if (outcome is Operations.Done done) await Send.OkAsync(new RecoveryCodesResponse(done.RecoveryCodes!), ct);
        else await Operations.WriteFailureAsync(HttpContext, outcome);
    }
}
