using Ams.Infrastructure;

namespace Ams.Features.AccessTokens;

public sealed class Services : ISliceServices
{
    public static void Add(IHostApplicationBuilder builder)
    {
        builder.Services.AddSweep<Sweeper>();
    }
}
