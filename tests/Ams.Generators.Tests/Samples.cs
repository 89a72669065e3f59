using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;

namespace Ams.Generators.Tests;

/// <summary>Compiles in-memory sources against this test run's own assemblies, FastEndpoints and FluentValidation among them.</summary>
static class Samples
{
    static readonly MetadataReference[] References = ((string)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES")!)
        .Split(Path.PathSeparator)
        .Select(path => (MetadataReference)MetadataReference.CreateFromFile(path))
        .ToArray();

    public static CSharpCompilation Compile(params string[] sources) =>
        CSharpCompilation.Create("Ams",
            sources.Select(s => CSharpSyntaxTree.ParseText(s, new CSharpParseOptions(LanguageVersion.Latest))),
            References,
            new CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary, nullableContextOptions: NullableContextOptions.Enable));

    /// <summary>The generated Slices.g.cs and the compilation that includes it.</summary>
    public static (string Source, Compilation Output) Generate(params string[] sources)
    {
        GeneratorDriver driver = CSharpGeneratorDriver.Create(new SlicesGenerator());
        driver = driver.RunGeneratorsAndUpdateCompilation(Compile(sources), out var output, out var diagnostics);
        Assert.Empty(diagnostics);
        var generated = Assert.Single(driver.GetRunResult().Results.Single().GeneratedSources);
        Assert.Equal("Slices.g.cs", generated.HintName);
        return (generated.SourceText.ToString(), output);
    }

    /// <summary>One slice with everything the generator looks for, and the things it must skip.</summary>
    public const string Orders = """
        using FastEndpoints;
        using FluentValidation;
        using System.Text.Json;
        using System.Text.Json.Serialization;
        using System.Text.Json.Serialization.Metadata;

        namespace Ams.Features.Orders;

        public enum Status { Open, Closed }

        public sealed class Request
        {
            public int Id { get; set; }
            public System.Guid? Ref { get; set; }
            public Status State { get; set; }
            public string Name { get; set; } = "";
            public System.Collections.Generic.List<string>? Tags { get; set; }
            public string Fixed { get; init; } = "";
            public string Computed => Name;
        }

        public sealed record Response(string Name);

        public sealed class Endpoint : Endpoint<Request, Response>
        {
            public override void Configure() => Get("/orders/{id}");
        }

        public sealed class Validator : Validator<Request>;

        public sealed class Page : EndpointWithoutRequest
        {
            public override void Configure() => Get("/orders");
        }

        public abstract class PageBase : EndpointWithoutRequest;

        public sealed class Services : Ams.Infrastructure.ISliceServices
        {
            public static void Add(Microsoft.Extensions.Hosting.IHostApplicationBuilder builder) { }
        }

        // Stands in for what the JSON source generator would add, which these tests do not run.
        [JsonSerializable(typeof(Request))]
        [JsonSerializable(typeof(Response))]
        sealed class OrdersJson() : JsonSerializerContext(null)
        {
            public static OrdersJson Default { get; } = new();
            protected override JsonSerializerOptions? GeneratedSerializerOptions => null;
            public override JsonTypeInfo? GetTypeInfo(System.Type type) => null;
        }
        """;

    /// <summary>A second slice: a request with a required member, a plain FluentValidation validator, an Endpoint&lt;TRequest&gt;.</summary>
    public const string Users = """
        using FastEndpoints;
        using FluentValidation;

        namespace Ams.Features.Users;

        public sealed class Query
        {
            public required string Name { get; set; }
        }

        public sealed class Endpoint : Endpoint<Query>
        {
            public override void Configure() => Get("/users");
        }

        public sealed class QueryValidator : AbstractValidator<Query>;
        """;

    public const string SliceServices = """
        namespace Ams.Infrastructure;

        public interface ISliceServices
        {
            static abstract void Add(Microsoft.Extensions.Hosting.IHostApplicationBuilder builder);
        }
        """;
}
