namespace Ams.Features.Register;

public sealed class Request
{
    public string Username { get; set; } = "";
    public string Password { get; set; } = "";
    public string? DisplayName { get; set; }
}

public sealed record Response(string Id, string Username, string DisplayName);
