using System.ComponentModel.DataAnnotations;

namespace Ams.Features.RenameConversation;

public sealed class Request
{
    [StringLength(CreateConversation.Validator.MaxTitleLength, MinimumLength = 1)]
    public string? Title { get; set; }
}
