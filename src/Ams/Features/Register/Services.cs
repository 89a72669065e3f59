using Ams.Infrastructure;

namespace Ams.Features.Register;

/// <summary>Who may register: anyone, holders of an invite code, or nobody (administrators create accounts).</summary>
public enum RegistrationMode { Open, Invite, Closed }

/// <summary>
/// <c>Registration:Mode</c>, and <c>Registration:MaxPerAddress</c> registrations per client address
/// per <c>Registration:Window</c>.
/// </summary>
public sealed class RegistrationLimits
{
    public RegistrationMode Mode { get; set; } = RegistrationMode.Open;
    public int MaxPerAddress { get; set; } = 20;
    public TimeSpan Window { get; set; } = TimeSpan.FromHours(1);
}

public sealed class Services : ISliceServices
{
    public static void Add(IHostApplicationBuilder builder) =>
        builder.Services.AddSingleton(Read(builder.Configuration));

    static RegistrationLimits Read(IConfiguration configuration)
    {
        var section = configuration.GetSection("Registration");
        var mode = section["Mode"];
        if (mode is { Length: > 0 } && !Enum.TryParse<RegistrationMode>(mode, ignoreCase: true, out _) || int.TryParse(mode, out _))
            throw new ConfigurationException($"Registration:Mode must be open, invite or closed, not '{mode}'.");
        return section.Get<RegistrationLimits>() ?? new();
    }
}
