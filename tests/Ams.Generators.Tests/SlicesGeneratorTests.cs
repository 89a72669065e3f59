using Microsoft.CodeAnalysis;

namespace Ams.Generators.Tests;

public sealed class SlicesGeneratorTests
{
    [Fact]
    public void Generates_the_lists_of_a_two_slice_app()
    {
        var (source, _) = Samples.Generate(Samples.SliceServices, Samples.Orders, Samples.Users);
        Snapshot.Match(source, "TwoSlices");
    }

    [Fact]
    public void An_app_without_slices_gets_empty_lists()
    {
        var (source, _) = Samples.Generate("namespace Ams; public static class Nothing;");
        Snapshot.Match(source, "NoSlices");
    }

    [Fact]
    public void The_output_does_not_depend_on_the_order_of_the_files()
    {
        var (forward, _) = Samples.Generate(Samples.SliceServices, Samples.Orders, Samples.Users);
        var (backward, _) = Samples.Generate(Samples.Users, Samples.Orders, Samples.SliceServices);
        Assert.Equal(forward, backward);
    }

    [Fact]
    public void The_generated_code_compiles_without_warnings()
    {
        var (_, output) = Samples.Generate(Samples.SliceServices, Samples.Orders, Samples.Users);
        var problems = output.GetDiagnostics().Where(d => d.Severity >= DiagnosticSeverity.Warning).ToList();
        Assert.True(problems.Count == 0, string.Join("\n", problems));
    }
}
