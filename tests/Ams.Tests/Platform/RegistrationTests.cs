using System.Text.Json.Serialization;
using FastEndpoints;
using FluentValidation;

namespace Ams.Tests.Platform;

/// <summary>
/// Native AOT cannot discover endpoints, validators or DTOs by reflection, so Ams.Generators
/// writes them into Slices at build time. These tests compare the generated lists with the
/// assembly by reflection: they fail when the generator misses a type.
/// </summary>
public sealed class RegistrationTests
{
    static readonly Type[] AppTypes = typeof(Slices).Assembly.GetTypes()
        .Where(t => t is { IsClass: true, IsAbstract: false, IsGenericTypeDefinition: false }).ToArray();

    public static TheoryData<string> Endpoints() => new(AppTypes.Where(t => typeof(IEndpoint).IsAssignableFrom(t)).Select(t => t.FullName!));
    public static TheoryData<string> Validators() => new(AppTypes.Where(t => typeof(IValidator).IsAssignableFrom(t)).Select(t => t.FullName!));
    public static TheoryData<string> JsonContexts() => new(AppTypes.Where(t => t.IsSubclassOf(typeof(JsonSerializerContext))).Select(t => t.FullName!));

    [Theory]
    [MemberData(nameof(Endpoints))]
    [MemberData(nameof(Validators))]
    public void Every_endpoint_and_validator_is_registered(string typeName) =>
        Assert.Contains(Slices.Types, t => t.FullName == typeName);

    [Theory]
    [MemberData(nameof(JsonContexts))]
    public void Every_json_context_is_in_the_chain(string typeName) =>
        Assert.Contains(Slices.JsonContexts, c => c.GetType().FullName == typeName);

    [Theory]
    [MemberData(nameof(Endpoints))]
    public void Every_request_and_response_type_has_json_metadata_and_a_binding_entry(string typeName)
    {
        var endpoint = AppTypes.Single(t => t.FullName == typeName);
        var (request, response) = RequestAndResponse(endpoint);
        foreach (var type in new[] { request, response }.Where(IsDto))
            Assert.True(Slices.JsonContexts.Any(c => c.GetTypeInfo(type) is not null), $"{type} is missing from every JSON context");
        if (IsDto(request))
            Assert.Contains(request, Slices.RequestTypes);
    }

    [Fact]
    public void Every_settable_request_property_has_a_getter_and_a_setter()
    {
        var cache = new ReflectionCache();
        Slices.AddRequestTypes(cache);
        foreach (var type in Slices.RequestTypes)
        {
            var definition = cache[type];
            var dto = definition.ObjectFactory!();
            Assert.IsType(type, dto);
            foreach (var property in type.GetProperties().Where(p => p.CanWrite))
            {
                var value = property.PropertyType == typeof(string) ? "x" : null;
                definition.Properties![property].Setter!(dto, value);
                Assert.Equal(value, definition.Properties[property].Getter!(dto));
            }
        }
    }

    [Fact]
    public void The_lists_are_not_empty() => Assert.True(Slices.Types.Count >= 10);

    static bool IsDto(Type t) => t != typeof(EmptyRequest) && t != typeof(object) && t != typeof(EmptyResponse);

    static (Type Request, Type Response) RequestAndResponse(Type endpoint)
    {
        for (var t = endpoint; t is not null; t = t.BaseType)
            if (t.IsGenericType && t.GetGenericTypeDefinition() == typeof(Endpoint<,>))
                return (t.GetGenericArguments()[0], t.GetGenericArguments()[1]);
        throw new InvalidOperationException($"{endpoint} does not derive from Endpoint<,>");
    }
}
