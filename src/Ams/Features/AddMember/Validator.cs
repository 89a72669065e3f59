using FastEndpoints;
using FluentValidation;

namespace Ams.Features.AddMember;

public sealed class Validator : Validator<Request>
{
    public Validator()
    {
        // Stop at the first failing rule of a field: later rules may assume the earlier ones held (e.g. not null).
        RuleLevelCascadeMode = CascadeMode.Stop;
        RuleFor(r => r.Username).NotEmpty().WithMessage("Username is required.")
            .MaximumLength(64).WithMessage("Username is too long.");
    }
}
