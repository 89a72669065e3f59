namespace Ams.Features.AddMember;

public sealed class Request
{
    public string Username { get; set; } = "";
}
