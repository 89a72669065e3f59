using Ams.Infrastructure;

namespace Ams.Features.Login;

public sealed class Request
{
    public string Username { get; set; } = "";
    public string Password { get; set; } = "";
    /// <summary>Optional: the <c>deviceToken</c> an earlier successful login on this client returned (see <see cref="Devices"/>).</summary>
    public string? DeviceToken { get; set; }
}

/// <summary><paramref name="DeviceToken"/>: keep it and send it with the next login, so that strangers' failures do not lock this client out.</summary>
public sealed record Response(string Token, DateTimeOffset ExpiresAt, UserView User, string DeviceToken);

/// <summary>The password step's answer when 2FA is on: no session yet, only a challenge for /api/login/2fa.</summary>
public sealed record ChallengeResponse(bool TwoFactorRequired, string Challenge, DateTimeOffset ExpiresAt, string DeviceToken);
