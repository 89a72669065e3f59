using System.Collections.Generic;
using System.Collections.Immutable;
using System.Linq;
using System.Text;
using System.Threading;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Microsoft.CodeAnalysis.Text;

namespace Ams.Generators;

/// <summary>
/// Writes <c>Ams.Slices</c>: what Native AOT cannot discover by reflection at start-up (the
/// endpoints and validators, the request DTOs' binding entries, the JSON contexts and the
/// slices' service registrations), so that a new slice needs no edit outside its folder.
/// </summary>
[Generator(LanguageNames.CSharp)]
public sealed class SlicesGenerator : IIncrementalGenerator
{
    public void Initialize(IncrementalGeneratorInitializationContext context)
    {
        var found = context.SyntaxProvider
            .CreateSyntaxProvider(
                static (node, _) => node is ClassDeclarationSyntax { TypeParameterList: null },
                static (ctx, ct) => Inspect(ctx.SemanticModel.GetDeclaredSymbol(ctx.Node, ct) as INamedTypeSymbol, ct))
            .Where(static f => f is not null)
            .Collect();

        context.RegisterSourceOutput(found, static (spc, items) =>
            spc.AddSource("Slices.g.cs", SourceText.From(SlicesWriter.Write(items!), Encoding.UTF8)));
    }

    static Found? Inspect(INamedTypeSymbol? type, CancellationToken ct)
    {
        if (type is null || type.IsAbstract || type.IsStatic) return null;
        ct.ThrowIfCancellationRequested();

        var isEndpoint = Symbols.IsEndpoint(type);
        var inTypes = isEndpoint || Symbols.IsValidator(type);
        var isContext = Symbols.IsJsonContext(type);
        var hasServices = Symbols.HasSliceServices(type);
        if (!inTypes && !isContext && !hasServices) return null;

        var request = isEndpoint && Symbols.RequestAndResponse(type) is { Request: INamedTypeSymbol dto } && !Symbols.IsPlaceholder(dto)
            ? Describe(dto)
            : null;
        return new Found(type.ToDisplayString(), type.ToDisplayString(Symbols.Qualified), inTypes, isContext, hasServices, request);
    }

    static RequestDto Describe(INamedTypeSymbol dto)
    {
        var properties = new List<DtoProperty>();
        var parsers = new List<ValueParser>();
        var seen = new HashSet<string>();
        // Derived first, so a property redeclared with `new` is taken from the DTO itself.
        for (var t = dto; t is not null && t.SpecialType != SpecialType.System_Object; t = t.BaseType)
            foreach (var p in t.GetMembers().OfType<IPropertySymbol>())
            {
                if (p.IsStatic || p.IsIndexer || p.DeclaredAccessibility != Accessibility.Public) continue;
                if (p.SetMethod is not { DeclaredAccessibility: Accessibility.Public } set || !seen.Add(p.Name)) continue;
                properties.Add(new DtoProperty(p.Name, p.Type.ToDisplayString(Symbols.Qualified), !set.IsInitOnly, p.IsRequired));
                if (ParserFor(p.Type) is { } parser && !parsers.Contains(parser)) parsers.Add(parser);
            }

        var canCreate = !dto.IsAbstract && dto.InstanceConstructors.Any(c =>
            c.DeclaredAccessibility == Accessibility.Public && c.Parameters.All(a => a.HasExplicitDefaultValue));
        return new RequestDto(dto.ToDisplayString(), dto.ToDisplayString(Symbols.Qualified), canCreate,
            new(properties.ToImmutableArray()), new(parsers.ToImmutableArray()));
    }

    /// <summary>
    /// FastEndpoints parses route, query, header and form values with a TryParse it finds by
    /// reflection unless the cache already has a parser; strings and enums it handles itself.
    /// </summary>
    static ValueParser? ParserFor(ITypeSymbol type)
    {
        if (type is INamedTypeSymbol { OriginalDefinition.SpecialType: SpecialType.System_Nullable_T } nullable)
            type = nullable.TypeArguments[0];
        if (type.SpecialType == SpecialType.System_String || type.TypeKind == TypeKind.Enum || type is not INamedTypeSymbol named)
            return null;

        var display = type.ToDisplayString(Symbols.Qualified);
        if (named.AllInterfaces.Any(i => Symbols.Is(i, "System", "IParsable", 1) && SymbolEqualityComparer.Default.Equals(i.TypeArguments[0], type)))
            return new ValueParser(display, WithCulture: true);
        var tryParse = named.GetMembers("TryParse").OfType<IMethodSymbol>().Any(m =>
            m is { IsStatic: true, DeclaredAccessibility: Accessibility.Public, ReturnType.SpecialType: SpecialType.System_Boolean, Parameters.Length: 2 } &&
            m.Parameters[0].Type.SpecialType == SpecialType.System_String &&
            m.Parameters[1].RefKind == RefKind.Out && SymbolEqualityComparer.Default.Equals(m.Parameters[1].Type, type));
        return tryParse ? new ValueParser(display, WithCulture: false) : null;
    }
}
