using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net.Sockets;
using System.Text.RegularExpressions;
using Ams.Testing;
using Xunit.Abstractions;

namespace Ams.Smoke;

/// <summary>
/// <c>just cluster</c> as README "Trying it by hand" tells a newcomer to use it: the console's
/// commands do to each engine what they say, and Ctrl-C stops everything it started.
/// </summary>
[Trait("Category", "Cluster")]
[Collection(nameof(ClusterConsoleTests))]
public sealed partial class ClusterConsoleTests(ITestOutputHelper output)
{
    [Fact]
    public async Task The_consoles_commands_pause_kill_and_start_what_they_name_and_Ctrl_C_stops_it_all()
    {
        var dll = Path.Combine(AppProcess.RepositoryRoot(), "tests", "Ams.Cluster", "bin", "Release", "net10.0", "Ams.Cluster.dll");
        Assert.True(File.Exists(dll), $"{dll} is missing: run `just build` first.");
        // A process group of its own, as a terminal's foreground job: Ctrl-C is sent to all of it below.
        using var console = Process.Start(new ProcessStartInfo("setsid", ["dotnet", dll])
        {
            RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        })!;
        var lines = new BlockingCollection<string>();
        console.OutputDataReceived += (_, e) => { if (e.Data is { } line) { lines.Add(line); output.WriteLine(line); } };
        console.ErrorDataReceived += (_, e) => { if (e.Data is { } line) output.WriteLine($"stderr: {line}"); };
        console.BeginOutputReadLine();
        console.BeginErrorReadLine();
        try
        {
            var nodes = Urls().Matches(await NextLineAsync(lines, "AMS nodes:", TimeSpan.FromMinutes(3))).Select(m => new Uri(m.Value)).ToArray();
            var galera = GaleraHosts().Match(await NextLineAsync(lines, "Galera (MariaDB):", TimeSpan.FromSeconds(5)));
            var galeraEndpoints = galera.Groups[1].Value.Split(',').Select(host => (Host: host, Port: int.Parse(galera.Groups[2].Value))).ToArray();
            Assert.Equal(3, galeraEndpoints.Length);
            var redisPorts = RedisPorts().Matches(await NextLineAsync(lines, "Redis Cluster:", TimeSpan.FromSeconds(5))).Select(m => int.Parse(m.Groups[1].Value)).ToArray();
            Assert.Equal(3, nodes.Length);
            Assert.Equal(6, redisPorts.Length);
            Assert.True(await AnswersAsync(nodes[1]));

            async Task<string> TypeAsync(string command, string expected, int seconds = 30)
            {
                await console.StandardInput.WriteLineAsync(command);
                await console.StandardInput.FlushAsync();
                return await NextLineAsync(lines, expected, TimeSpan.FromSeconds(seconds));
            }

            await TypeAsync("help", "pause ams|galera N");
            await TypeAsync("fly ams 1", "unknown command");
            await TypeAsync("kill ams 4", "no AMS node '4': they are 1, 2 and 3");
            await TypeAsync("pause redis 1", $"no Redis node on port '1': they are {redisPorts[0]}");

            await TypeAsync("pause ams 2", "AMS node 2 paused");
            Assert.False(await AnswersAsync(nodes[1]));
            await TypeAsync("resume ams 2", "AMS node 2 resumed");
            Assert.True(await AnswersAsync(nodes[1]));

            await TypeAsync("kill ams 3", "AMS node 3 killed");
            Assert.False(await AnswersAsync(nodes[2]));
            await TypeAsync("start ams 3", "AMS node 3 serves again", seconds: 60);
            Assert.True(await AnswersAsync(nodes[2]));

            // The node's last 3 lines (it has logged more since it started), then help's first line.
            await console.StandardInput.WriteLineAsync("log ams 3 3");
            await console.StandardInput.WriteLineAsync("help");
            var shown = new List<string>();
            for (var line = await NextLineAsync(lines, "", TimeSpan.FromSeconds(10)); !line.Contains("kill ams N"); line = await NextLineAsync(lines, "", TimeSpan.FromSeconds(10)))
                shown.Add(line);
            Assert.Equal(3, shown.Count);

            var redis = redisPorts[0];
            await TypeAsync($"pause redis {redis}", $"Redis node {redis} paused");
            Assert.False(await RedisAnswersAsync(redis));
            await TypeAsync($"resume redis {redis}", $"Redis node {redis} resumed");
            Assert.True(await RedisAnswersAsync(redis));

            await TypeAsync("pause galera 3", "Galera node 3 paused");
            await TypeAsync("resume galera 3", "Galera node 3 resumed, rejoined and is synced", seconds: 120);

            // Starting what runs is refused, and leaves it running (a second server on the same
            // ports and data once stopped the first and deleted the Galera cluster's directory).
            await TypeAsync("start ams 2", $"failed: The node on {nodes[1]} is running");
            await TypeAsync("start galera 2", "failed: Galera node 2 is running");
            await TypeAsync($"start redis {redisPorts[1]}", $"failed: Redis node {redisPorts[1]} is running");
            await Task.Delay(TimeSpan.FromSeconds(3));
            Assert.True(await AnswersAsync(nodes[1]));
            Assert.True(await RedisAnswersAsync(redisPorts[1]));

            // Stopped as README says, with Ctrl-C: SIGINT to the whole process group (the console, the
            // servers' wrappers, the servers), then the TERM npm's `just` sends after it. It exits by
            // itself, at once even with engines paused, and leaves nothing listening, paused or not
            // (a paused server still takes connections: only a refused one proves it gone).
            await TypeAsync("pause ams 1", "AMS node 1 paused");
            await TypeAsync("pause galera 2", "Galera node 2 paused");
            await TypeAsync($"pause redis {redisPorts[2]}", $"Redis node {redisPorts[2]} paused");
            var stoppedIn = Stopwatch.StartNew();
            using (var kill = Process.Start("kill", ["-INT", "--", $"-{console.Id}"])!) kill.WaitForExit();
            await Task.Delay(200);
            using (var kill = Process.Start("kill", ["-TERM", console.Id.ToString()])!) kill.WaitForExit();
            using var stopping = new CancellationTokenSource(TimeSpan.FromSeconds(90));
            await console.WaitForExitAsync(stopping.Token);
            Assert.True(stoppedIn.Elapsed < TimeSpan.FromSeconds(20), $"stopped in {stoppedIn.Elapsed.TotalSeconds:F1} s with three engines paused");
            Assert.Equal(0, console.ExitCode);
            var endpoints = nodes.Select(n => (n.Host, n.Port)).Concat(redisPorts.Select(p => ("127.0.0.1", p))).Concat(galeraEndpoints);
            foreach (var (host, port) in endpoints) Assert.False(await ListeningAsync(host, port), $"{host}:{port} still takes connections");
        }
        finally
        {
            if (!console.HasExited) console.Kill(entireProcessTree: true);
        }
    }

    /// <summary>The next line that contains <paramref name="expected"/>, or a failure after the wait.</summary>
    static async Task<string> NextLineAsync(BlockingCollection<string> lines, string expected, TimeSpan wait)
    {
        using var timeout = new CancellationTokenSource(wait);
        return await Task.Run(() =>
        {
            try
            {
                while (true)
                    if (lines.Take(timeout.Token) is var line && line.Contains(expected, StringComparison.Ordinal)) return line;
            }
            catch (OperationCanceledException)
            {
                throw new Xunit.Sdk.XunitException($"The console wrote no line with \"{expected}\" within {wait.TotalSeconds:F0} s.");
            }
        });
    }

    /// <summary>Whether /healthz answers within 2 s (a paused node takes the connection and says nothing).</summary>
    static async Task<bool> AnswersAsync(Uri node)
    {
        using var client = new HttpClient { BaseAddress = node, Timeout = TimeSpan.FromSeconds(2) };
        try
        {
            return (await client.GetAsync("/healthz")).IsSuccessStatusCode;
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
        {
            return false;
        }
    }

    /// <summary>Whether something takes a TCP connection there within 2 s (a paused server does).</summary>
    static async Task<bool> ListeningAsync(string host, int port)
    {
        using var client = new TcpClient();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(2));
        try
        {
            await client.ConnectAsync(host, port, timeout.Token);
            return true;
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException)
        {
            return false;
        }
    }

    /// <summary>Whether the Redis node answers PING within 2 s.</summary>
    static async Task<bool> RedisAnswersAsync(int port)
    {
        using var client = new TcpClient();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(2));
        try
        {
            await client.ConnectAsync("127.0.0.1", port, timeout.Token);
            var stream = client.GetStream();
            await stream.WriteAsync("PING\r\n"u8.ToArray(), timeout.Token);
            var reply = new byte[7];
            var read = await stream.ReadAsync(reply, timeout.Token);
            return System.Text.Encoding.ASCII.GetString(reply, 0, read).StartsWith("+PONG");
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException or IOException)
        {
            return false;
        }
    }

    [GeneratedRegex(@"http://127\.0\.0\.1:\d+/?")]
    private static partial Regex Urls();

    [GeneratedRegex(@"127\.0\.0\.1:(\d+)")]
    private static partial Regex RedisPorts();

    [GeneratedRegex(@"(?i)Server=([^;]+);.*?Port=(\d+)")]
    private static partial Regex GaleraHosts();
}

/// <summary>
/// Alone, after the other test classes: they pause, kill and resume servers by process id while
/// this one checks that a paused node says nothing, and on a machine whose process ids wrap at
/// 32,768 a signal meant for one of theirs may reach one of its (once in CI, its paused node
/// answered). Its own cluster on two shared cores also makes the others' timings worse.
/// </summary>
[CollectionDefinition(nameof(ClusterConsoleTests), DisableParallelization = true)]
public sealed class ClusterConsoleCollection;

