using System.Collections.Generic;
using System.Linq;
using Microsoft.CodeAnalysis;

namespace Ams.Generators;

/// <summary>How the generator and the analyzer recognise FastEndpoints, FluentValidation and System.Text.Json types.</summary>
static class Symbols
{
    public static readonly SymbolDisplayFormat Qualified = SymbolDisplayFormat.FullyQualifiedFormat;

    public static bool IsEndpoint(INamedTypeSymbol type) => BaseTypes(type).Any(t => Is(t, "FastEndpoints", "BaseEndpoint", 0));

    public static bool IsValidator(INamedTypeSymbol type) => BaseTypes(type).Any(t => Is(t, "FluentValidation", "AbstractValidator", 1));

    public static bool IsJsonContext(INamedTypeSymbol type) =>
        BaseTypes(type).Any(t => Is(t, "System.Text.Json.Serialization", "JsonSerializerContext", 0));

    public static bool HasSliceServices(INamedTypeSymbol type) =>
        type.AllInterfaces.Any(i => Is(i, "Ams.Infrastructure", "ISliceServices", 0));

    /// <summary>
    /// The arguments of <c>Endpoint&lt;TRequest, TResponse&gt;</c>, which every endpoint base
    /// (<c>Endpoint&lt;TReq&gt;</c>, <c>EndpointWithoutRequest&lt;TRes&gt;</c>, <c>Ep.Req…</c>) derives from.
    /// </summary>
    public static (ITypeSymbol Request, ITypeSymbol Response)? RequestAndResponse(INamedTypeSymbol endpoint)
    {
        foreach (var t in BaseTypes(endpoint))
            if (Is(t, "FastEndpoints", "Endpoint", 2))
                return (t.TypeArguments[0], t.TypeArguments[1]);
        return null;
    }

    /// <summary>Types FastEndpoints makes itself, not DTOs of the app.</summary>
    public static bool IsPlaceholder(ITypeSymbol type) =>
        type.SpecialType == SpecialType.System_Object ||
        type is INamedTypeSymbol named && (Is(named, "FastEndpoints", "EmptyRequest", 0) || Is(named, "FastEndpoints", "EmptyResponse", 0));

    public static IEnumerable<INamedTypeSymbol> BaseTypes(INamedTypeSymbol type)
    {
        for (var t = type.BaseType; t is not null; t = t.BaseType)
            yield return t;
    }

    public static bool Is(INamedTypeSymbol type, string ns, string name, int arity) =>
        type.Name == name && type.Arity == arity && type.ContainingType is null && type.ContainingNamespace.ToDisplayString() == ns;
}
