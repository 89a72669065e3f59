using Ams.Infrastructure;

namespace Ams.Features.FindUsers;

public sealed class Services : ISliceServices
{
    public static void Add(IHostApplicationBuilder builder) =>
        builder.Services.AddSingleton(builder.Configuration.GetSection("Users").Get<LookupLimits>() ?? new());
}
