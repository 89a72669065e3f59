using FastEndpoints;
using FluentValidation;

namespace Ams.Features.TwoFactor;

static class Rules
{
    /// <summary>A 6-digit TOTP code, or (where allowed) a recovery code like abcd-efgh-ijkl.</summary>
    public static IRuleBuilderOptions<T, string> SecondFactor<T>(this IRuleBuilder<T, string> rule, bool recoveryAllowed) =>
        rule.NotEmpty().WithMessage("Code is required.")
            .Must(c => Totp.IsTotpCode(c) || recoveryAllowed && Totp.NormalizeRecoveryCode(c) is not null)
            .WithMessage(recoveryAllowed ? "Code must be 6 digits or a recovery code." : "Code must be 6 digits.");
}

public sealed class CodeValidator : Validator<CodeRequest>
{
    public CodeValidator()
    {
        RuleLevelCascadeMode = CascadeMode.Stop;
        RuleFor(r => r.Code).SecondFactor(recoveryAllowed: false);
    }
}

public sealed class SetupValidator : Validator<SetupRequest>
{
    public SetupValidator()
    {
        RuleLevelCascadeMode = CascadeMode.Stop;
        RuleFor(r => r.Password).NotEmpty().WithMessage("Password is required.").MaximumLength(1024).WithMessage("Password is too long.");
    }
}

public sealed class DisableValidator : Validator<DisableRequest>
{
    public DisableValidator()
    {
        RuleLevelCascadeMode = CascadeMode.Stop;
        RuleFor(r => r.Password).NotEmpty().WithMessage("Password is required.").MaximumLength(1024);
        RuleFor(r => r.Code).SecondFactor(recoveryAllowed: true);
    }
}

public sealed class LoginValidator : Validator<LoginRequest>
{
    public LoginValidator()
    {
        RuleLevelCascadeMode = CascadeMode.Stop;
        RuleFor(r => r.Challenge).NotEmpty().WithMessage("Challenge is required.").MaximumLength(64);
        RuleFor(r => r.Code).SecondFactor(recoveryAllowed: true);
    }
}
