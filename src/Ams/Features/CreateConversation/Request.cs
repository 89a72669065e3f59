using System.ComponentModel.DataAnnotations;

namespace Ams.Features.CreateConversation;

public sealed class Request
{
    public List<string>? Members { get; set; }
    [StringLength(Validator.MaxTitleLength, MinimumLength = 1)]
    public string? Title { get; set; }
}
