using System.Diagnostics;
using System.Runtime.InteropServices;

namespace Ams.Testing;

/// <summary>
/// A long-running server process whose output goes to a log file and which cannot outlive the
/// test process: a small shell wrapper holds a pipe from us on its stdin and, when that pipe
/// closes without a clean stop first (crash, SIGKILL, test host torn down), shuts the server
/// down and deletes its directory. AppDomain.ProcessExit alone misses crashes and kills.
/// </summary>
internal sealed class ServerProcess : IDisposable
{
    private const int SigTerm = 15;
    private const int SigKill = 9;
    private const int SigStop = 19;
    private const int SigCont = 18;

    // $0 and "$@" are the server and its arguments. Prints the server's pid, then waits for it.
    // The watcher ignores TERM once it has started cleaning up, so the wrapper's final kill
    // cannot interrupt the cleanup. The shell's own messages (a bare "Killed" when a test kills
    // the server) go to the server's log, not into the test run's output. Ctrl-C reaches the whole
    // terminal's process group: the wrapper ignores it, so the process that started it (`just
    // cluster`) stops the server itself, a paused one included (the watcher sends CONT after its
    // TERM for the same reason).
    private const string Wrapper = """
        trap '' INT
        exec 2>>"$AMS_SERVER_LOG"
        "$0" "$@" </dev/null >>"$AMS_SERVER_LOG" 2>&1 &
        server=$!
        echo "$server"
        exec 3<&0
        (
          while read -r _ <&3; do :; done
          trap '' TERM
          kill -TERM "$server" 2>/dev/null
          kill -CONT "$server" 2>/dev/null
          while kill -0 "$server" 2>/dev/null; do sleep 0.1; done
          rm -rf "$AMS_SERVER_ORPHAN_DIR"
        ) &
        watcher=$!
        wait "$server"
        status=$?
        # The shell says "Killed" only when the kill comes after it began to wait: said here always.
        if [ "$status" -gt 128 ]; then echo "$0 ended by signal $(kill -l "$((status - 128))")" >&2; fi
        kill "$watcher" 2>/dev/null
        wait "$watcher" 2>/dev/null
        exit "$status"
        """;

    private readonly Process _wrapper;

    private ServerProcess(Process wrapper, int serverId, string logPath)
    {
        _wrapper = wrapper;
        Id = serverId;
        LogPath = logPath;
    }

    public string LogPath { get; }

    /// <summary>The server's own pid (not the wrapper's).</summary>
    public int Id { get; }

    public bool HasExited => _wrapper.HasExited;

    /// <param name="orphanDir">Deleted by the wrapper if the test process goes away without stopping the server.</param>
    public static async Task<ServerProcess> StartAsync(
        string fileName, IEnumerable<string> arguments, string logPath, string orphanDir, CancellationToken ct,
        IReadOnlyDictionary<string, string>? environment = null)
    {
        var startInfo = new ProcessStartInfo("/bin/sh")
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
        };
        startInfo.ArgumentList.Add("-c");
        startInfo.ArgumentList.Add(Wrapper);
        startInfo.ArgumentList.Add(fileName);
        foreach (var argument in arguments)
        {
            startInfo.ArgumentList.Add(argument);
        }
        startInfo.Environment["AMS_SERVER_LOG"] = logPath;
        startInfo.Environment["AMS_SERVER_ORPHAN_DIR"] = orphanDir;
        foreach (var (name, value) in environment ?? new Dictionary<string, string>())
        {
            startInfo.Environment[name] = value;
        }

        var wrapper = Process.Start(startInfo)
            ?? throw new InvalidOperationException($"Could not start {fileName}.");
        var pidLine = await wrapper.StandardOutput.ReadLineAsync(ct);
        if (!int.TryParse(pidLine, out var serverId))
        {
            wrapper.Kill(entireProcessTree: true);
            wrapper.Dispose();
            throw new InvalidOperationException($"Could not start {fileName}: wrapper printed '{pidLine}'.");
        }
        return new ServerProcess(wrapper, serverId, logPath);
    }

    /// <summary>
    /// SIGTERM lets the server shut down cleanly (Process.Kill would send SIGKILL);
    /// SIGKILL only if it has not gone within <paramref name="grace"/>.
    /// </summary>
    public async Task StopAsync(TimeSpan grace)
    {
        if (_wrapper.HasExited)
        {
            return;
        }
        // The server's pid stays ours until the wrapper reaps it, right before the wrapper exits.
        _ = kill(Id, SigTerm);
        _ = kill(Id, SigCont);   // a paused server takes its TERM once it runs again
        using var timeout = new CancellationTokenSource(grace);
        try
        {
            await _wrapper.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            _ = kill(Id, SigKill);
            await _wrapper.WaitForExitAsync();
        }
    }

    /// <summary>SIGSTOP: the server keeps its sockets open and answers nothing, as a hung or swapped-out server does.</summary>
    public void Pause() => _ = kill(Id, SigStop);

    /// <summary>SIGKILL at once, as a crash: the server gets no chance to shut down cleanly.</summary>
    public void Kill() => _ = kill(Id, SigKill);

    public Task WaitForExitAsync() => _wrapper.WaitForExitAsync();

    /// <summary>SIGCONT after <see cref="Pause"/>.</summary>
    public void Resume() => _ = kill(Id, SigCont);

    public string LogTail(int lines = 40)
    {
        try
        {
            var all = File.ReadAllLines(LogPath);
            return string.Join('\n', all.Skip(Math.Max(0, all.Length - lines)));
        }
        catch (IOException exception)
        {
            return $"(no log: {exception.Message})";
        }
    }

    /// <summary>Closes the wrapper's stdin; if the server is still running, that stops it too.</summary>
    public void Dispose() => _wrapper.Dispose();

    [DllImport("libc", SetLastError = true)]
    internal static extern int kill(int pid, int sig);
}
