using Ams.Infrastructure;

namespace Ams.Features.Login;

public sealed class Request
{
    public string Username { get; set; } = "";
    public string Password { get; set; } = "";
}

public sealed record Response(string Token, DateTimeOffset ExpiresAt, UserView User);

/// <summary>The password step's answer when 2FA is on: no session yet, only a challenge for /api/login/2fa.</summary>
public sealed record ChallengeResponse(bool TwoFactorRequired, string Challenge, DateTimeOffset ExpiresAt);
