using System.ComponentModel.DataAnnotations;

namespace Ams.Features.EditMessage;

public sealed class Request
{
    [StringLength(SendMessage.Validator.MaxBodyLength, MinimumLength = 1)]
    public string Body { get; set; } = "";
}
