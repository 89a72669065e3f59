using Ams.Infrastructure;

namespace Ams.Features.TwoFactor;

public sealed class Services : ISliceServices
{
    public static void Add(IHostApplicationBuilder builder)
    {
        builder.Services.AddSingleton(builder.Configuration.GetSection("TwoFactor").Get<GuardOptions>() ?? new());
        builder.Services.AddSingleton<Totp>();
    }
}
