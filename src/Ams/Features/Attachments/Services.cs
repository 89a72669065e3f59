using Ams.Infrastructure;
using Ams.Infrastructure.Files;

namespace Ams.Features.Attachments;

public sealed class Services : ISliceServices
{
    public static void Add(IHostApplicationBuilder builder)
    {
        var options = builder.Configuration.GetSection("Attachments").Get<AttachmentOptions>() ?? new();
        builder.Services.AddSingleton(options);
        builder.Services.AddSingleton<IChunkStore, MariaDbChunkStore>();
        builder.Services.AddSweep<Sweeper>();
    }
}
