using FastEndpoints;
using FluentValidation;

namespace Ams.Features.Login;

// Only shape checks: anything that could exist must reach the password check, so that a
// wrong name and a wrong password look the same.
public sealed class Validator : Validator<Request>
{
    public Validator()
    {
        // Stop at the first failing rule of a field: later rules may assume the earlier ones held (e.g. not null).
        RuleLevelCascadeMode = CascadeMode.Stop;
        RuleFor(r => r.Username).NotEmpty().WithMessage("Username is required.")
            .MaximumLength(64).WithMessage("Username is too long.");
        RuleFor(r => r.Password).NotEmpty().WithMessage("Password is required.")
            .MaximumLength(1024).WithMessage("Password is too long.");
        RuleFor(r => r.DeviceToken).MaximumLength(100).WithMessage("Device token is too long.");
    }
}
