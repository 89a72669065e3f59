using Ams.Infrastructure;

namespace Ams.Features.TwoFactor;

public sealed class CodeRequest
{
    public string Code { get; set; } = "";
}

public sealed class SetupRequest
{
    public string Password { get; set; } = "";
}

public sealed class DisableRequest
{
    public string Password { get; set; } = "";
    public string Code { get; set; } = "";
}

/// <summary>New recovery codes: the password and a TOTP code (a recovery code may not make new ones).</summary>
public sealed class RecoveryCodesRequest
{
    public string Password { get; set; } = "";
    public string Code { get; set; } = "";
}

public sealed class LoginRequest
{
    public string Challenge { get; set; } = "";
    public string Code { get; set; } = "";
}

public sealed record SetupResponse(string Secret, string OtpauthUri, string QrSvg);
public sealed record RecoveryCodesResponse(IReadOnlyList<string> RecoveryCodes);
public sealed record LoginResponse(string Token, DateTimeOffset ExpiresAt, UserView User);
