namespace Ams.Features.RenameConversation;

public sealed class Request
{
    public string? Title { get; set; }
}
