using Ams.Infrastructure;
using Ams.Infrastructure.Crypto;

namespace Ams.Features.Entropy;

public sealed class Services : ISliceServices
{
    public static void Add(IHostApplicationBuilder builder)
    {
        var entropy = builder.Configuration.GetSection("Entropy").Get<EntropyOptions>() ?? new();
        builder.Services.AddSingleton(entropy);
        builder.Services.AddSingleton(builder.Configuration.GetSection("RandomOrg").Get<RandomOrgOptions>() ?? new());
        // The mixer calls its keys atmospheric while its last reseed from the pool is this fresh.
        builder.Services.AddSingleton(sp => new EntropyMixer(sp.GetRequiredService<TimeProvider>()) { FreshFor = entropy.ReseedInterval * 2 });
        builder.Services.AddSingleton<IKeyMintCounter, MintedKeys>();
        builder.Services.AddSingleton<RandomOrgClient>();
        builder.Services.AddSingleton<Pool>();
        builder.Services.AddSingleton<Refiller>();
        builder.Services.AddHostedService<Service>();
        builder.Services.AddHostedService<EntropyMetrics>();
    }
}
