using Ams.Infrastructure;

namespace Ams.Features.Login;

public sealed class Request
{
    public string Username { get; set; } = "";
    public string Password { get; set; } = "";
}

public sealed record Response(string Token, DateTimeOffset ExpiresAt, UserView User);
