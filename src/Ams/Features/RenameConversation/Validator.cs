using Ams.Infrastructure;
using FastEndpoints;
using FluentValidation;

namespace Ams.Features.RenameConversation;

/// <summary>The same title rules as creating a group; a rename needs a title (null or missing is 400).</summary>
public sealed class Validator : Validator<Request>
{
    public Validator()
    {
        // Stop at the first failing rule of a field: later rules may assume the earlier ones held (e.g. not null).
        RuleLevelCascadeMode = CascadeMode.Stop;
        RuleFor(r => r.Title).NotNull().WithMessage("Title is required.")
            .Must(t => Text.IsWellFormed(t!) && Text.Length(t!) is >= 1 and <= CreateConversation.Validator.MaxTitleLength && !Text.IsBlank(t!))
                .WithMessage($"Title must be 1–{CreateConversation.Validator.MaxTitleLength} characters, not all invisible.")
            .Must(t => !Text.HasControlCharacters(t!)).WithMessage("Title must not contain control characters.");
    }
}
