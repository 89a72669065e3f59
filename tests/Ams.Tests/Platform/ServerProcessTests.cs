using Ams.Testing;

namespace Ams.Tests.Platform;

/// <summary>The fixtures' wrapper around mariadbd and redis-server.</summary>
public sealed class ServerProcessTests
{
    [Fact]
    public async Task A_server_killed_as_a_crash_is_reported_in_its_own_log_not_in_the_test_run()
    {
        // The cluster drill kills servers on purpose; the shell's bare "Killed" landed in CI's output.
        var dir = Directory.CreateTempSubdirectory("ams-server-process-").FullName;
        try
        {
            var log = Path.Combine(dir, "server.log");
            using var server = await ServerProcess.StartAsync("sleep", ["60"], log, Path.Combine(dir, "orphan"), CancellationToken.None);
            server.Kill();
            await server.WaitForExitAsync();
            // Even killed at once, before the wrapper's shell began to wait for it (it then said
            // nothing: a flaky failure in CI).
            Assert.Contains("sleep ended by signal KILL", await File.ReadAllTextAsync(log));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
