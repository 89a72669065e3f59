using Ams.Infrastructure;

namespace Ams.Features.Register;

/// <summary><c>Registration:MaxPerAddress</c> registrations per client address per <c>Registration:Window</c>.</summary>
public sealed class RegistrationLimits
{
    public int MaxPerAddress { get; set; } = 20;
    public TimeSpan Window { get; set; } = TimeSpan.FromHours(1);
}

public sealed class Services : ISliceServices
{
    public static void Add(IHostApplicationBuilder builder) =>
        builder.Services.AddSingleton(builder.Configuration.GetSection("Registration").Get<RegistrationLimits>() ?? new());
}
