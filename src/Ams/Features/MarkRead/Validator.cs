using Ams.Infrastructure.Messaging;
using FastEndpoints;
using FluentValidation;

namespace Ams.Features.MarkRead;

public sealed class Validator : Validator<Request>
{
    public Validator()
    {
        // Stop at the first failing rule of a field: later rules may assume the earlier ones held (e.g. not null).
        RuleLevelCascadeMode = CascadeMode.Stop;
        RuleFor(r => r.UpTo).Must(id => Ids.TryParse(id, out _)).WithMessage("upTo must be a message id.");
    }
}
