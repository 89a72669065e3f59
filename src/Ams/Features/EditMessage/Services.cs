using Ams.Infrastructure;
using Ams.Infrastructure.Messaging;

namespace Ams.Features.EditMessage;

public sealed class Services : ISliceServices
{
    public static void Add(IHostApplicationBuilder builder) => builder.Services.AddEventKind<EditedEvents>();
}
