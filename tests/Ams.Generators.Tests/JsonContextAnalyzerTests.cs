using System.Collections.Immutable;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Diagnostics;

namespace Ams.Generators.Tests;

public sealed class JsonContextAnalyzerTests
{
    const string Endpoint = """
        using FastEndpoints;
        using System.Text.Json.Serialization;

        namespace Ams.Features.Notes;

        public sealed class Request { public string Text { get; set; } = ""; }
        public sealed record Response(string Id);

        public sealed class Endpoint : Endpoint<Request, Response>
        {
            public override void Configure() => Post("/notes");
        }

        public sealed class Page : EndpointWithoutRequest
        {
            public override void Configure() => Get("/notes");
        }
        """;

    [Fact]
    public async Task A_dto_named_by_a_context_passes()
    {
        var diagnostics = await AnalyzeAsync(Endpoint, Context("[JsonSerializable(typeof(Request))] [JsonSerializable(typeof(Response))]"));
        Assert.Empty(diagnostics);
    }

    [Fact]
    public async Task A_response_missing_from_every_context_is_an_error_on_the_endpoint()
    {
        var diagnostics = await AnalyzeAsync(Endpoint, Context("[JsonSerializable(typeof(Request))]"));

        var error = Assert.Single(diagnostics);
        Assert.Equal("AMS001", error.Id);
        Assert.Equal(DiagnosticSeverity.Error, error.Severity);
        Assert.Contains("Ams.Features.Notes.Response is the response type of Ams.Features.Notes.Endpoint", error.GetMessage());
        Assert.Equal("Endpoint", error.Location.SourceTree!.GetText().ToString(error.Location.SourceSpan));
    }

    [Fact]
    public async Task Without_any_context_request_and_response_are_both_reported()
    {
        var diagnostics = await AnalyzeAsync(Endpoint);
        Assert.Equal(["request", "response"], diagnostics.Select(d => d.GetMessage().Split(' ')[3]).Order());
    }

    static string Context(string attributes) => $$"""
        using System.Text.Json;
        using System.Text.Json.Serialization;
        using System.Text.Json.Serialization.Metadata;

        namespace Ams.Features.Notes;

        {{attributes}}
        sealed class NotesJson() : JsonSerializerContext(null)
        {
            protected override JsonSerializerOptions? GeneratedSerializerOptions => null;
            public override JsonTypeInfo? GetTypeInfo(System.Type type) => null;
        }
        """;

    static async Task<ImmutableArray<Diagnostic>> AnalyzeAsync(params string[] sources)
    {
        var compilation = Samples.Compile(sources);
        Assert.Empty(compilation.GetDiagnostics().Where(d => d.Severity == DiagnosticSeverity.Error));
        return await compilation.WithAnalyzers([new JsonContextAnalyzer()]).GetAnalyzerDiagnosticsAsync();
    }
}
