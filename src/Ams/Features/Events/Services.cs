using Ams.Infrastructure;

namespace Ams.Features.Events;

public sealed class Services : ISliceServices
{
    public static void Add(IHostApplicationBuilder builder)
    {
        builder.Services.AddSingleton(builder.Configuration.GetSection("Events").Get<StreamOptions>() ?? new());
        builder.Services.AddSingleton<Stream>();
        builder.Services.AddSweep<Sweeper>();
    }
}
