namespace Ams.Features.Register;

public sealed class Request
{
    public string Username { get; set; } = "";
    public string Password { get; set; } = "";
    public string? DisplayName { get; set; }
    /// <summary>With <c>Registration:Mode=invite</c>: the code from <c>Ams admin invite</c>; ignored otherwise.</summary>
    public string? Invite { get; set; }
}

public sealed record Response(string Id, string Username, string DisplayName);
