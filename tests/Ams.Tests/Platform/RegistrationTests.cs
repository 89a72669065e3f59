using System.Reflection;
using FastEndpoints;
using FluentValidation;

namespace Ams.Tests.Platform;

/// <summary>
/// Native AOT cannot discover endpoints, validators or DTOs by reflection, so Registrations
/// and AppJsonContext list them by hand. These tests fail when a new one is not listed.
/// </summary>
public sealed class RegistrationTests
{
    static readonly Type[] AppTypes = typeof(Registrations).Assembly.GetTypes()
        .Where(t => t is { IsClass: true, IsAbstract: false, IsGenericTypeDefinition: false }).ToArray();

    public static TheoryData<string> Endpoints() => new(AppTypes.Where(t => typeof(IEndpoint).IsAssignableFrom(t)).Select(t => t.FullName!));
    public static TheoryData<string> Validators() => new(AppTypes.Where(t => typeof(IValidator).IsAssignableFrom(t)).Select(t => t.FullName!));

    [Theory]
    [MemberData(nameof(Endpoints))]
    [MemberData(nameof(Validators))]
    public void Every_endpoint_and_validator_is_registered(string typeName) =>
        Assert.Contains(Registrations.Types, t => t.FullName == typeName);

    [Theory]
    [MemberData(nameof(Endpoints))]
    public void Every_request_and_response_type_has_json_metadata_and_a_binding_entry(string typeName)
    {
        var endpoint = AppTypes.Single(t => t.FullName == typeName);
        var (request, response) = RequestAndResponse(endpoint);
        foreach (var type in new[] { request, response }.Where(IsDto))
            Assert.True(AppJsonContext.Default.GetTypeInfo(type) is not null, $"{type} is missing from AppJsonContext");
        if (IsDto(request))
            Assert.Contains(request, Registrations.RequestTypes);
    }

    [Fact]
    public void The_lists_are_not_empty() => Assert.True(Registrations.Types.Count >= 10);

    static bool IsDto(Type t) => t != typeof(EmptyRequest) && t != typeof(object) && t != typeof(EmptyResponse);

    static (Type Request, Type Response) RequestAndResponse(Type endpoint)
    {
        for (var t = endpoint; t is not null; t = t.BaseType)
            if (t.IsGenericType && t.GetGenericTypeDefinition() == typeof(Endpoint<,>))
                return (t.GetGenericArguments()[0], t.GetGenericArguments()[1]);
        throw new InvalidOperationException($"{endpoint} does not derive from Endpoint<,>");
    }
}
