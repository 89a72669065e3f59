using Ams.Infrastructure;
using FastEndpoints;
using FluentValidation;

namespace Ams.Features.EditMessage;

/// <summary>An edit's body follows the send's rules, except that it may never be empty (delete the message instead).</summary>
public sealed class Validator : Validator<Request>
{
    public Validator()
    {
        // Stop at the first failing rule of a field: later rules may assume the earlier ones held (e.g. not null).
        RuleLevelCascadeMode = CascadeMode.Stop;
        RuleFor(r => r.Body)
            .NotNull().WithMessage("Body must not be null.")
            .NotEmpty().WithMessage("Body must not be empty.")
            .Must(Text.IsWellFormed).WithMessage("Body contains invalid Unicode.")
            .Must(b => !Text.HasControlCharactersBesidesLineBreaks(b)).WithMessage(SendMessage.Validator.NoControls)
            .Must(b => !Text.IsBlank(b)).WithMessage(SendMessage.Validator.NothingVisible)
            .Must(b => Text.Length(b) <= SendMessage.Validator.MaxBodyLength)
            .WithMessage($"Body must be at most {SendMessage.Validator.MaxBodyLength} characters.");
    }
}
