using Ams.Infrastructure;
using Ams.Infrastructure.Messaging;

namespace Ams.Features.React;

public sealed class Services : ISliceServices
{
    public static void Add(IHostApplicationBuilder builder)
    {
        ConversationLimits.Add(builder);
        builder.Services.AddEventKind<ReactionEvents>();
    }
}
