using System.Runtime.CompilerServices;

namespace Ams.Generators.Tests;

/// <summary>
/// Compares generated code with the committed Snapshots/NAME.verified.cs. On a mismatch it writes
/// NAME.received.cs beside it and fails; accept a change by renaming the received file.
/// </summary>
static class Snapshot
{
    public static void Match(string actual, string name, [CallerFilePath] string callerFile = "")
    {
        var directory = Path.Combine(Path.GetDirectoryName(callerFile)!, "Snapshots");
        var verified = Path.Combine(directory, name + ".verified.cs");
        var received = Path.Combine(directory, name + ".received.cs");
        actual = actual.ReplaceLineEndings("\n");
        var expected = File.Exists(verified) ? File.ReadAllText(verified).ReplaceLineEndings("\n") : null;
        if (actual == expected)
        {
            File.Delete(received);
            return;
        }
        File.WriteAllText(received, actual);
        Assert.Fail(expected is null
            ? $"No snapshot yet: review {received} and rename it to {name}.verified.cs"
            : $"The generated code differs from {verified}: compare it with {received}");
    }
}
