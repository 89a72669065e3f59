using System.Diagnostics;
using Ams.Testing;

namespace Ams.Tests.Platform;

/// <summary>
/// scripts/dev-services.sh, behind `just run`, `just admin` and `just rotate-keys`: Ctrl-C (SIGINT
/// to the whole process group) stops the command and reports success, a command that fails on its
/// own still fails, and the development master key sits in the repository's .data/. The servers
/// are given (ConnectionStrings__*), so the script starts none.
/// </summary>
public sealed class DevServicesTests
{
    sealed record Run(int ExitCode, string Output);

    static async Task<Run> RunAsync(string command, bool interrupt, string? root = null, string environment = "")
    {
        var marker = Path.Combine(Path.GetTempPath(), $"ams-dev-services-{Guid.NewGuid():N}");
        // Job control gives the script its own process group, as a terminal does; the marker says
        // the command is running, so the interrupt reaches it and not the script's start-up.
        var script = $$"""
            set -m
            export ConnectionStrings__MariaDb=given ConnectionStrings__Redis=given {{environment}}
            bash scripts/dev-services.sh bash -c 'touch {{marker}}; {{command}}' & pid=$!
            if {{(interrupt ? "true" : "false")}}; then
              for _ in $(seq 200); do [ -e {{marker}} ] && break; sleep 0.05; done
              kill -INT -- -$pid
            fi
            wait $pid; echo "exit $?"
            """;
        var start = new ProcessStartInfo("bash", ["-c", script])
        {
            WorkingDirectory = root ?? AppProcess.RepositoryRoot(),
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        using var process = Process.Start(start)!;
        var output = await process.StandardOutput.ReadToEndAsync();
        await process.WaitForExitAsync();
        File.Delete(marker);
        var line = Assert.Single(output.Split('\n'), l => l.StartsWith("exit ", StringComparison.Ordinal));
        return new Run(int.Parse(line["exit ".Length..], System.Globalization.CultureInfo.InvariantCulture), output);
    }

    // Given, so that these runs leave the repository's own key alone.
    const string KeyGiven = "Crypto__DevKeyFile=/nonexistent/dev-master-keys";

    [Theory]
    [InlineData("exec sleep 30")]                          // killed by the SIGINT: 130
    [InlineData("trap \"exit 143\" INT; sleep 30 & wait")] // what `dotnet run` answers: 143
    public async Task Ctrl_C_stops_the_command_and_the_script_reports_success(string command) =>
        Assert.Equal(0, (await RunAsync(command, interrupt: true, environment: KeyGiven)).ExitCode);

    [Fact]
    public async Task A_command_that_fails_on_its_own_still_fails() =>
        Assert.Equal(3, (await RunAsync("exit 3", interrupt: false, environment: KeyGiven)).ExitCode);

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

            // Once there, it stays: a later key in the old place does not replace it.
            await File.WriteAllTextAsync(old, "dev:a-stray-key");
            Assert.Equal(0, (await RunAsync("true", interrupt: false, root: root)).ExitCode);
            Assert.Equal("dev:the-key-already-in-use", await File.ReadAllTextAsync(moved));
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }
}
