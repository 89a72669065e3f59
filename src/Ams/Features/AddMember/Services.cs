using Ams.Infrastructure;
using Ams.Infrastructure.Messaging;

namespace Ams.Features.AddMember;

public sealed class Services : ISliceServices
{
    public static void Add(IHostApplicationBuilder builder) => ConversationLimits.Add(builder);
}
