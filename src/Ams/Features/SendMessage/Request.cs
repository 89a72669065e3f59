using System.ComponentModel.DataAnnotations;
using Ams.Infrastructure;

namespace Ams.Features.SendMessage;

public sealed class Request
{
    public string? ConversationId { get; set; }
    public string? To { get; set; }
    [StringLength(Validator.MaxBodyLength)]
    public string Body { get; set; } = "";
    /// <summary>Ids of the caller's own unsent uploads (api.md "Attachments"); with one or more, the body may be empty.</summary>
    [ApiMaxItems(Validator.MaxAttachments)]
    public List<string>? Attachments { get; set; }
}
