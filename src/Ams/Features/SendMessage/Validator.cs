using Ams.Infrastructure;
using Ams.Infrastructure.Messaging;
using FastEndpoints;
using FluentValidation;

namespace Ams.Features.SendMessage;

public sealed class Validator : Validator<Request>
{
    public const int MaxBodyLength = 4000;
    public const int MaxAttachments = 10;
    public const string NoControls = "Body must not contain control characters other than tab and line breaks.";
    // Zero-width spaces, joiners and the like alone: an empty message that reads as one, as names and titles refuse.
    public const string NothingVisible = "Body must not be empty: it has no visible character.";

    // A file is the message by itself: the body may then be empty. Only the rule it is given to
    // (FluentValidation's default would lift every rule before it too).
    static bool WithoutAttachments(Request r) => r.Attachments is not { Count: > 0 };

    public Validator()
    {
        // Stop at the first failing rule of a field: later rules may assume the earlier ones held (e.g. not null).
        RuleLevelCascadeMode = CascadeMode.Stop;
        RuleFor(r => r.Body)
            .NotEmpty().When(WithoutAttachments, ApplyConditionTo.CurrentValidator).WithMessage("Body must not be empty.")
            .NotNull().WithMessage("Body must not be null.")
            .Must(Text.IsWellFormed).WithMessage("Body contains invalid Unicode.")
            .Must(b => !Text.HasControlCharactersBesidesLineBreaks(b)).WithMessage(NoControls)
            .Must(b => !Text.IsBlank(b)).When(WithoutAttachments, ApplyConditionTo.CurrentValidator).WithMessage(NothingVisible)
            .Must(b => Text.Length(b) <= MaxBodyLength).WithMessage($"Body must be at most {MaxBodyLength} characters.");
        RuleFor(r => r.Attachments)
            .Must(a => a is null || a.Count <= MaxAttachments).WithMessage($"A message has at most {MaxAttachments} attachments.")
            .Must(a => a is null || a.All(id => Ids.TryParse(id, out _))).WithMessage("Attachments must be attachment ids.")
            // By value: "4" and "04" name one attachment (ids compare as numbers).
            .Must(a => a is null || a.Select(id => Ids.TryParse(id, out var n) ? n : 0).Distinct().Count() == a.Count).WithMessage("Each attachment may be named once.");
        RuleFor(r => r.ConversationId)
            .Must((r, id) => !string.IsNullOrEmpty(id) || !string.IsNullOrEmpty(r.To)).WithMessage("Give conversationId or to: where the message goes.")
            .Must((r, id) => string.IsNullOrEmpty(id) || string.IsNullOrEmpty(r.To)).WithMessage("Give either conversationId or to, not both.");
    }
}
