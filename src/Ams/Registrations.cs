using System.Diagnostics.CodeAnalysis;
using FastEndpoints;

namespace Ams;

/// <summary>
/// What FastEndpoints' source generator would have produced (its package is not available
/// to us): the endpoint and validator types, the binding reflection cache for request DTOs,
/// and the JSON context. Native AOT cannot discover any of it by reflection, and a missing
/// entry fails only at run time (404 or 500), so RegistrationTests compares these lists
/// with the types actually in the assembly.
/// </summary>
public static class Registrations
{
    public static readonly List<Type> Types =
    [
        Of<Features.Health.Endpoint>(),
        Of<Features.Chat.Page>(),
        Of<Features.Chat.ListFragment>(),
        Of<Features.Entropy.Panel>(),
        Of<Features.CreateConversation.Page>(),
        Of<Features.SendMessage.FormEndpoint>(),
        Of<Features.History.OlderFragment>(),
        Of<Features.Register.Endpoint>(),
        Of<Features.Register.Validator>(),
        Of<Features.Register.Page>(),
        Of<Features.Login.Endpoint>(),
        Of<Features.Login.Validator>(),
        Of<Features.Login.Page>(),
        Of<Features.Logout.Endpoint>(),
        Of<Features.Me.Endpoint>(),
        Of<Features.Entropy.Endpoint>(),
        Of<Features.CreateConversation.Endpoint>(),
        Of<Features.CreateConversation.Validator>(),
        Of<Features.Inbox.Endpoint>(),
        Of<Features.GetConversation.Endpoint>(),
        Of<Features.AddMember.Endpoint>(),
        Of<Features.AddMember.Validator>(),
        Of<Features.History.Endpoint>(),
        Of<Features.SendMessage.Endpoint>(),
        Of<Features.SendMessage.Validator>(),
        Of<Features.MarkRead.Endpoint>(),
        Of<Features.MarkRead.Validator>(),
        Of<Features.Events.Endpoint>(),
        Of<Features.Events.FragmentEndpoint>(),
        Of<Features.TwoFactor.SetupEndpoint>(),
        Of<Features.TwoFactor.EnableEndpoint>(),
        Of<Features.TwoFactor.DisableEndpoint>(),
        Of<Features.TwoFactor.RecoveryCodesEndpoint>(),
        Of<Features.TwoFactor.LoginEndpoint>(),
        Of<Features.TwoFactor.CodeValidator>(),
        Of<Features.TwoFactor.SecondStepPage>(),
        Of<Features.TwoFactor.SettingsPage>(),
        Of<Features.TwoFactor.DisableValidator>(),
        Of<Features.TwoFactor.LoginValidator>(),
    ];

    /// <summary>Request DTOs: FastEndpoints creates and fills them without reflection from these entries.</summary>
    public static void AddRequestTypes(ReflectionCache cache)
    {
        Dto<Features.Register.Request>(cache);
        Dto<Features.Login.Request>(cache);
        Dto<Features.CreateConversation.Request>(cache);
        Dto<Features.AddMember.Request>(cache);
        Dto<Features.SendMessage.Request>(cache);
        Dto<Features.MarkRead.Request>(cache);
        Dto<Features.TwoFactor.CodeRequest>(cache);
        Dto<Features.TwoFactor.DisableRequest>(cache);
        Dto<Features.TwoFactor.LoginRequest>(cache);
    }

    public static IEnumerable<Type> RequestTypes
    {
        get
        {
            var cache = new ReflectionCache();
            AddRequestTypes(cache);
            return cache.Keys;
        }
    }

    public static void Configure(Config c)
    {
        AddRequestTypes(c.Binding.ReflectionCache);
        // The same type URI that ASP.NET uses for every other 400 the app sends.
        c.Errors.UseProblemDetails(p => p.TypeValue = "https://tools.ietf.org/html/rfc9110#section-15.5.1");
    }

    static Type Of<[DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.All)] T>() => typeof(T);

    static void Dto<[DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicParameterlessConstructor | DynamicallyAccessedMemberTypes.PublicProperties)] T>(
        ReflectionCache cache) where T : new()
    {
        var definition = new TypeDefinition { ObjectFactory = static () => new T(), Properties = new() };
        foreach (var property in typeof(T).GetProperties())
        {
            if (!property.CanWrite) continue;
            definition.Properties![property] = new PropertyDefinition
            {
                Getter = property.GetValue,
                Setter = property.SetValue,
            };
        }
        cache[typeof(T)] = definition;
    }
}
