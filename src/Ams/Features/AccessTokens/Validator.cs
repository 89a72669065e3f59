using Ams.Infrastructure;
using FastEndpoints;
using FluentValidation;

namespace Ams.Features.AccessTokens;

public sealed class Validator : Validator<CreateRequest>
{
    public const int MaxDays = 365;
    public const int MaxNameLength = 64;

    public Validator()
    {
        RuleLevelCascadeMode = CascadeMode.Stop;
        RuleFor(r => r.Name)
            .NotEmpty().WithMessage("Name is required.")
            .Must(Text.IsWellFormed).WithMessage("Name contains invalid Unicode.")
            .Must(n => Text.Length(n) is >= 1 and <= MaxNameLength && !Text.IsBlank(n)).WithMessage($"Name must be 1–{MaxNameLength} characters, not all invisible.")
            .Must(n => !Text.HasControlCharacters(n)).WithMessage("Name must not contain control characters.");
        RuleFor(r => r.Password).NotEmpty().WithMessage("Password is required.").MaximumLength(1024).WithMessage("Password is too long.");
        RuleFor(r => r.ExpiresInDays)
            .InclusiveBetween(1, MaxDays).WithMessage($"expiresInDays must be from 1 to {MaxDays}.")
            .When(r => r.ExpiresInDays is not null);
    }
}
