using System.Text.RegularExpressions;

namespace Ams.Tests.Platform;

/// <summary>Shared plumbing is called by slices, never the other way round.</summary>
public sealed partial class ArchitectureTests
{
    static string SourceRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Ams.sln"))) return Path.Combine(dir.FullName, "src", "Ams");
        throw new InvalidOperationException("Ams.sln not found above the test binaries");
    }

    // A slice's namespace, written out or relative (Features.X inside namespace Ams); not a member
    // access such as ASP.NET's HttpContext.Features.
    [GeneratedRegex(@"(?<![\w.])Features\.|Ams\.Features")]
    private static partial Regex FeaturesReference();

    [Fact]
    public void Infrastructure_names_no_slice()
    {
        var files = Directory.GetFiles(Path.Combine(SourceRoot(), "Infrastructure"), "*.cs", SearchOption.AllDirectories);
        Assert.NotEmpty(files);
        var offenders = files.SelectMany(f => File.ReadLines(f).Select((line, i) => (f, line, i)))
            .Where(x => FeaturesReference().IsMatch(x.line))
            .Select(x => $"{Path.GetFileName(x.f)}:{x.i + 1}: {x.line.Trim()}").ToList();
        Assert.Empty(offenders);
    }

    [Fact]
    public void Infrastructure_knows_no_event_kind()
    {
        // Kinds are the slices' business: the log, hub and streams carry a kind as an opaque name.
        var messaging = Directory.GetFiles(Path.Combine(SourceRoot(), "Infrastructure", "Messaging"), "*.cs");
        Assert.NotEmpty(messaging);
        foreach (var file in messaging)
            Assert.DoesNotMatch(@"EventKinds|IEventFragment|""read""|[Kk]ind\s*==\s*""", File.ReadAllText(file));
    }
}
