namespace Ams.Features.CreateConversation;

public sealed class Request
{
    public List<string>? Members { get; set; }
    public string? Title { get; set; }
}
