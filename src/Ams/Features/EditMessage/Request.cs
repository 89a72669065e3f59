namespace Ams.Features.EditMessage;

public sealed class Request
{
    public string Body { get; set; } = "";
}
