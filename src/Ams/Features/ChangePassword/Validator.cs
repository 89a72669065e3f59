using FastEndpoints;
using FluentValidation;
using FluentValidation.Results;

namespace Ams.Features.ChangePassword;

public sealed class Validator : Validator<Request>
{
    // Register's own rules for a password, so a new password is held to exactly what an account starts with.
    static readonly Register.Validator RegisterRules = new();

    public Validator()
    {
        RuleLevelCascadeMode = CascadeMode.Stop;
        RuleFor(r => r.CurrentPassword).NotEmpty().WithMessage("Current password is required.")
            .MaximumLength(1024).WithMessage("Current password is too long.");
        RuleFor(r => r.NewPassword).Custom((password, context) =>
        {
            // (FastEndpoints may camel-case property names globally, hence the case-insensitive match.)
            var result = RegisterRules.Validate(new Register.Request { Username = "", Password = password ?? "" });
            foreach (var failure in result.Errors.Where(f => string.Equals(f.PropertyName, nameof(Register.Request.Password), StringComparison.OrdinalIgnoreCase)))
                context.AddFailure(new ValidationFailure(nameof(Request.NewPassword), failure.ErrorMessage));
        });
    }
}
