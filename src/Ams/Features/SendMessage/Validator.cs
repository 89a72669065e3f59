using Ams.Infrastructure;
using FastEndpoints;
using FluentValidation;

namespace Ams.Features.SendMessage;

public sealed class Validator : Validator<Request>
{
    public const int MaxBodyLength = 4000;

    public Validator()
    {
        // Stop at the first failing rule of a field: later rules may assume the earlier ones held (e.g. not null).
        RuleLevelCascadeMode = CascadeMode.Stop;
        RuleFor(r => r.Body)
            .NotEmpty().WithMessage("Body must not be empty.")
            .Must(Text.IsWellFormed).WithMessage("Body contains invalid Unicode.")
            .Must(b => Text.Length(b) <= MaxBodyLength).WithMessage($"Body must be at most {MaxBodyLength} characters.");
        RuleFor(r => r.ConversationId)
            .Must((r, id) => string.IsNullOrEmpty(id) != string.IsNullOrEmpty(r.To)).WithMessage("Give either conversationId or to, not both.");
    }
}
