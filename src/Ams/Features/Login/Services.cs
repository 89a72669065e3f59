using Ams.Infrastructure;

namespace Ams.Features.Login;

public sealed class Services : ISliceServices
{
    public static void Add(IHostApplicationBuilder builder)
    {
        builder.Services.AddSingleton(builder.Configuration.GetSection("Login").Get<ThrottleOptions>() ?? new());
        builder.Services.AddSingleton<Throttle>();
        builder.Services.AddSingleton<Devices>();
        builder.Services.AddSingleton<Reauthentication>();
    }
}
