using FastEndpoints;
using FluentValidation;

namespace Ams.Features.TwoFactor;

static class Rules
{
    /// <summary>A 6-digit TOTP code, or (where allowed) a recovery code like abcd-efgh-ijkl.</summary>
    public static IRuleBuilderOptions<T, string> SecondFactor<T>(this IRuleBuilder<T, string> rule, bool recoveryAllowed)
    {
        var message = recoveryAllowed ? "Code must be 6 digits or a recovery code." : "Code must be 6 digits.";
        // The pattern is what the API document shows; it also refuses non-ASCII lookalikes (the
        // Kelvin sign for k). Its $ lets a final line break through, which the second rule refuses.
        return rule.NotEmpty().WithMessage("Code is required.")
            .Matches(recoveryAllowed ? CodeOrRecoveryCode : Code).WithMessage(message)
            .Must(c => Totp.IsTotpCode(c) || recoveryAllowed && Totp.NormalizeRecoveryCode(c) is not null).WithMessage(message);
    }

    const string Code = "^[0-9]{6}$";
    const string CodeOrRecoveryCode = "^([0-9]{6}|[- ]*([a-zA-Z2-7][- ]*){12})$";
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

public sealed class RecoveryCodesValidator : Validator<RecoveryCodesRequest>
{
    public RecoveryCodesValidator()
    {
        RuleLevelCascadeMode = CascadeMode.Stop;
        RuleFor(r => r.Password).NotEmpty().WithMessage("Password is required.").MaximumLength(1024);
        RuleFor(r => r.Code).SecondFactor(recoveryAllowed: false);
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
