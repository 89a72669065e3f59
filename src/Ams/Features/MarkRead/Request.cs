namespace Ams.Features.MarkRead;

public sealed class Request
{
    public string UpTo { get; set; } = "";
}
