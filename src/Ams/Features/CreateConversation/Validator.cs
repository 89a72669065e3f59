using Ams.Infrastructure;
using Ams.Infrastructure.Messaging;
using FastEndpoints;
using FluentValidation;

namespace Ams.Features.CreateConversation;

public sealed class Validator : Validator<Request>
{
    /// <summary>A bound on the request's list alone; the group's size is checked against Conversations:MaxMembers.</summary>
    public const int MaxNames = 10_000;
    public const int MaxTitleLength = 100;

    public Validator()
    {
        var limits = Resolve<ConversationLimits>();
        // Stop at the first failing rule of a field: later rules may assume the earlier ones held (e.g. not null).
        RuleLevelCascadeMode = CascadeMode.Stop;
        RuleFor(r => r.Members).NotEmpty().WithMessage("Name at least one other member.")
            .Must(m => m!.Count <= MaxNames).WithMessage($"Name at most {MaxNames} members.")
            // More distinct names than the largest group is too many, whoever they are (the endpoint checks the exact count).
            .Must(m => m!.Select(n => (n ?? "").Trim().ToLowerInvariant()).Distinct().Count() <= limits.MaxMembers)
                .WithMessage(limits.TooManyMembers);
        RuleForEach(r => r.Members).NotEmpty().WithMessage("Member usernames must not be empty.")
            .MaximumLength(64).WithMessage("Member username is too long.");
        RuleFor(r => r.Title!)
            .Must(t => Text.IsWellFormed(t) && Text.Length(t) is >= 1 and <= MaxTitleLength && !Text.IsBlank(t))
                .WithMessage($"Title must be 1–{MaxTitleLength} characters, not all invisible.")
            .Must(t => !Text.HasControlCharacters(t)).WithMessage("Title must not contain control characters.")
            .When(r => r.Title is not null);
    }
}
