using System.Diagnostics;
using Ams.Testing;

namespace Ams.Tests.Platform;

/// <summary>
/// scripts/dev-services.sh, behind `just run`, `just admin` and `just rotate-keys`: Ctrl-C (SIGINT
/// to the whole process group) ends `just run` with success but still fails a command cut short,
/// a command that fails on its own still fails, and the development master key sits in the
/// repository's .data/. The servers are given (ConnectionStrings__*), so the script starts none.
/// </summary>
public sealed class DevServicesTests
{
    sealed record Run(int ExitCode, string Output, string Errors);

    /// <param name="command">Run by bash; it touches "$MARKER" once it is ready for the interrupt.</param>
    static async Task<Run> RunAsync(string command, bool interrupt, string? root = null, string environment = "")
    {
        var marker = Path.Combine(Path.GetTempPath(), $"ams-dev-services-{Guid.NewGuid():N}");
        // Job control gives the script its own process group, as a terminal does; the marker says
        // the command is ready, so the interrupt reaches it and not the script's start-up.
        var script = $$"""
            set -m
            export ConnectionStrings__MariaDb=given ConnectionStrings__Redis=given MARKER={{marker}} {{environment}}
            bash scripts/dev-services.sh bash -c '{{command}}' & pid=$!
            if {{(interrupt ? "true" : "false")}}; then
              for _ in $(seq 200); do [ -e {{marker}} ] && break; sleep 0.05; done
              kill -INT -- -$pid
            fi
            wait $pid; echo "exit $?"
            """;
        // SIGINT back to its default first: a test run started from a background job inherits it
        // ignored, and a shell that starts with a signal ignored cannot trap it, so the Ctrl-C
        // below would never land (the tests hung for minutes).
        var start = new ProcessStartInfo("env", ["--default-signal=INT", "bash", "-c", script])
        {
            WorkingDirectory = root ?? AppProcess.RepositoryRoot(),
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        using var process = Process.Start(start)!;
        var errors = process.StandardError.ReadToEndAsync();
        var output = await process.StandardOutput.ReadToEndAsync();
        await process.WaitForExitAsync();
        File.Delete(marker);
        var line = output.Split('\n').SingleOrDefault(l => l.StartsWith("exit ", StringComparison.Ordinal))
            ?? throw new Xunit.Sdk.XunitException($"no exit status; stdout: {output}; stderr: {await errors}");
        return new Run(int.Parse(line["exit ".Length..], System.Globalization.CultureInfo.InvariantCulture), output, await errors);
    }

    // Given, so that these runs leave the repository's own key alone.
    const string KeyGiven = "Crypto__DevKeyFile=/nonexistent/dev-master-keys";
    const string JustRun = KeyGiven + " DEV_SERVICES_STOP_IS_SUCCESS=1";

    // A server killed by the SIGINT (130), and one that catches it and exits 143 as `dotnet run` does.
    const string KilledBySignal = "touch \"$MARKER\"; exec sleep 30";
    const string ExitsOnSignal = "trap \"exit 143\" INT; touch \"$MARKER\"; while :; do sleep 0.05; done";

    [Theory]
    [InlineData(KilledBySignal)]
    [InlineData(ExitsOnSignal)]
    public async Task Ctrl_C_ends_just_run_with_success(string command)
    {
        var run = await RunAsync(command, interrupt: true, environment: JustRun);
        Assert.True(run.ExitCode == 0, $"exit {run.ExitCode}: {run.Errors}");
    }

    [Fact]
    public async Task Ctrl_C_still_fails_any_other_command_it_cuts_short()
    {
        // The command's 143, or the script's own 130 when the command ended in the instant of the signal.
        var run = await RunAsync(ExitsOnSignal, interrupt: true, environment: KeyGiven);
        Assert.True(run.ExitCode is 130 or 143, $"exit {run.ExitCode}: {run.Errors}");
    }

    [Fact]
    public async Task A_command_that_fails_on_its_own_still_fails() =>
        Assert.Equal(3, (await RunAsync("exit 3", interrupt: false, environment: JustRun)).ExitCode);

    [Fact]
    public async Task The_development_master_key_lives_in_the_repository_s_data_directory_and_an_old_one_moves_there()
    {
        // A copy of the layout: the script finds the repository from its own path.
        var root = Directory.CreateTempSubdirectory("ams-dev-key-").FullName;
        try
        {
            Directory.CreateDirectory(Path.Combine(root, "scripts"));
            File.Copy(Path.Combine(AppProcess.RepositoryRoot(), "scripts", "dev-services.sh"), Path.Combine(root, "scripts", "dev-services.sh"));
            var old = Path.Combine(root, "src", "Ams", ".data", "dev-master-keys");
            Directory.CreateDirectory(Path.GetDirectoryName(old)!);
            await File.WriteAllTextAsync(old, "dev:the-key-already-in-use");

            var run = await RunAsync("echo \"key=$Crypto__DevKeyFile\"", interrupt: false, root: root);
            Assert.Equal(0, run.ExitCode);
            var moved = Path.Combine(root, ".data", "dev-master-keys");
            Assert.Contains($"key={moved}", run.Output);
            Assert.Equal("dev:the-key-already-in-use", await File.ReadAllTextAsync(moved));
            Assert.False(File.Exists(old));

            // Once there, it stays: a different key in the old place does not replace it, and is named in a warning.
            await File.WriteAllTextAsync(old, "dev:a-stray-key");
            var again = await RunAsync("true", interrupt: false, root: root);
            Assert.Equal(0, again.ExitCode);
            Assert.Equal("dev:the-key-already-in-use", await File.ReadAllTextAsync(moved));
            Assert.Contains("two different development master keys", again.Errors);
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }
}
