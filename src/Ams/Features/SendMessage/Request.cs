namespace Ams.Features.SendMessage;

public sealed class Request
{
    public string? ConversationId { get; set; }
    public string? To { get; set; }
    public string Body { get; set; } = "";
}
