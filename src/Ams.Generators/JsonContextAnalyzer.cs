using System;
using System.Collections.Generic;
using System.Collections.Immutable;
using System.Linq;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Diagnostics;

namespace Ams.Generators;

/// <summary>
/// AMS001: an endpoint's request or response type that no JsonSerializerContext names. Native
/// AOT has no reflection-based JSON, so such an endpoint builds and publishes cleanly and then
/// answers 500; this turns that into a build error.
/// </summary>
[DiagnosticAnalyzer(LanguageNames.CSharp)]
public sealed class JsonContextAnalyzer : DiagnosticAnalyzer
{
    public static readonly DiagnosticDescriptor MissingJsonType = new(
        "AMS001",
        "Endpoint DTO is missing from every JSON context",
        "{0} is the {1} type of {2} but no JsonSerializerContext has [JsonSerializable(typeof({0}))]; add it to the slice's Json.cs",
        "Ams",
        DiagnosticSeverity.Error,
        isEnabledByDefault: true);

    public override ImmutableArray<DiagnosticDescriptor> SupportedDiagnostics => [MissingJsonType];

    public override void Initialize(AnalysisContext context)
    {
        context.ConfigureGeneratedCodeAnalysis(GeneratedCodeAnalysisFlags.None);
        context.EnableConcurrentExecution();
        context.RegisterCompilationStartAction(start =>
        {
            var serializable = new Lazy<HashSet<ITypeSymbol>>(() => Serializable(start.Compilation));
            start.RegisterSymbolAction(c => Check(c, serializable.Value), SymbolKind.NamedType);
        });
    }

    static void Check(SymbolAnalysisContext context, HashSet<ITypeSymbol> serializable)
    {
        if (context.Symbol is not INamedTypeSymbol { IsAbstract: false, IsGenericType: false } type || !Symbols.IsEndpoint(type)) return;
        if (Symbols.RequestAndResponse(type) is not var (request, response)) return;
        foreach (var (dto, role) in new[] { (request, "request"), (response, "response") })
            if (!Symbols.IsPlaceholder(dto) && dto.TypeKind != TypeKind.TypeParameter && !serializable.Contains(dto))
                context.ReportDiagnostic(Diagnostic.Create(MissingJsonType, type.Locations.FirstOrDefault(),
                    dto.ToDisplayString(), role, type.ToDisplayString()));
    }

    /// <summary>Every type named by [JsonSerializable] on a context declared in this compilation.</summary>
    static HashSet<ITypeSymbol> Serializable(Compilation compilation)
    {
        var types = new HashSet<ITypeSymbol>(SymbolEqualityComparer.Default);
        foreach (var context in AllTypes(compilation.Assembly.GlobalNamespace).Where(Symbols.IsJsonContext))
            foreach (var attribute in context.GetAttributes())
                if (attribute.AttributeClass is { } a && Symbols.Is(a, "System.Text.Json.Serialization", "JsonSerializableAttribute", 0) &&
                    attribute.ConstructorArguments.FirstOrDefault().Value is ITypeSymbol named)
                    types.Add(named);
        return types;
    }

    static IEnumerable<INamedTypeSymbol> AllTypes(INamespaceOrTypeSymbol scope)
    {
        foreach (var member in scope.GetMembers())
            if (member is INamespaceSymbol ns)
                foreach (var t in AllTypes(ns)) yield return t;
            else if (member is INamedTypeSymbol type)
            {
                yield return type;
                foreach (var nested in AllTypes(type)) yield return nested;
            }
    }
}
