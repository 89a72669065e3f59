using Ams.Infrastructure;
using Ams.Infrastructure.Messaging;

namespace Ams.Features.SendMessage;

public sealed class Services : ISliceServices
{
    public static void Add(IHostApplicationBuilder builder)
    {
        builder.Services.AddEventKind<MessageEvents>();
        builder.Services.AddSingleton(builder.Configuration.GetSection("Messaging").Get<SendLimits>() ?? new());
        builder.Services.AddSingleton<Throttle>();
        builder.Services.AddSingleton<GroupCommit>();
        builder.Services.AddSweep<KeySweeper>();
    }
}
