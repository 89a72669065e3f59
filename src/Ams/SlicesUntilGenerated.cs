namespace Ams;

// Stand-in for the generated Slices.AddServices until the generator lands.
public static partial class Slices
{
    public static void AddServices(IHostApplicationBuilder builder)
    {
        Features.Entropy.Services.Add(builder);
        Features.Events.Services.Add(builder);
        Features.Login.Services.Add(builder);
        Features.MarkRead.Services.Add(builder);
        Features.SendMessage.Services.Add(builder);
        Features.TwoFactor.Services.Add(builder);
    }
}
