using Ams.Infrastructure;
using FastEndpoints;
using FluentValidation;

namespace Ams.Features.Register;

public sealed class Validator : Validator<Request>
{
    public const int MinPasswordLength = 12;
    public const int MaxPasswordLength = 128;
    public const int MaxDisplayNameLength = 64;

    public Validator()
    {
        // Stop at the first failing rule of a field: later rules may assume the earlier ones held (e.g. not null).
        RuleLevelCascadeMode = CascadeMode.Stop;
        RuleFor(r => r.Username)
            .NotEmpty().WithMessage("Username is required.")
            // ^…$ (not \A…\z) so the API document's pattern reads the same to JSON Schema; $ lets a final
            // line break through in .NET, which the second rule refuses.
            .Matches("^[a-zA-Z0-9_.-]{3,32}$").WithMessage("Username must be 3–32 characters of a-z, 0-9, '_', '.' and '-'.")
            .Must(u => !u.EndsWith('\n')).WithMessage("Username must be 3–32 characters of a-z, 0-9, '_', '.' and '-'.");
        RuleFor(r => r.Password)
            .NotEmpty().WithMessage("Password is required.")
            .Must(Text.IsWellFormed).WithMessage("Password contains invalid Unicode.")
            .Must(p => Text.Length(p) is >= MinPasswordLength and <= MaxPasswordLength)
                .WithMessage($"Password must be {MinPasswordLength}–{MaxPasswordLength} characters.")
            .Must(p => !CommonPasswords.Contains(p)).WithMessage("This password is on the list of commonly used passwords; choose another.")
            .Must((r, p) => !string.Equals(p, r.Username, StringComparison.OrdinalIgnoreCase)).WithMessage("Password must not be the username.");
        RuleFor(r => r.DisplayName!)
            .Must(Text.IsWellFormed).WithMessage("Display name contains invalid Unicode.")
            .Must(d => Text.Length(d) is >= 1 and <= MaxDisplayNameLength && !Text.IsBlank(d)).WithMessage($"Display name must be 1–{MaxDisplayNameLength} characters, not all invisible.")
            .Must(d => !Text.HasControlCharacters(d)).WithMessage("Display name must not contain control characters.")
            .When(r => r.DisplayName is not null);
    }
}
