using Ams.Infrastructure;
using Ams.Infrastructure.Files;

namespace Ams.Features.Attachments;

public sealed class Services : ISliceServices
{
    public static void Add(IHostApplicationBuilder builder)
    {
        var options = builder.Configuration.GetSection("Attachments").Get<AttachmentOptions>() ?? new();
        if (options.MaxBytes < 1 || options.QuotaBytes < 1 || options.MaxUploads < 1)
            throw new InvalidOperationException("Attachments:MaxBytes, Attachments:QuotaBytes and Attachments:MaxUploads must be positive.");
        builder.Services.AddSingleton(options);
        builder.Services.AddSingleton<IChunkStore, MariaDbChunkStore>();
        builder.Services.AddSingleton<Sweeper>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<Sweeper>());
    }
}
