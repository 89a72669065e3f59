using System.Diagnostics;
using System.Net;
using Xunit;

namespace Ams.Testing;

/// <summary>
/// The published Native-AOT binary (artifacts/publish/Ams, or $AMS_BINARY) running as its own
/// process, on Kestrel and a free port, against throwaway MariaDB and Redis servers. It can be
/// restarted on the same port and data, as after a deploy.
/// </summary>
public sealed class AppProcess : IAsyncLifetime
{
    // Owned only when this instance started them (the test fixture); the benchmark shares its own.
    MariaDbServer? mariadb;
    RedisServer? redis;
    string mariaDbConnection = "", redisConnection = "";
    string fileName = "";
    string[] arguments = [];
    IReadOnlyDictionary<string, string> extraEnvironment = new Dictionary<string, string>();
    Process process = null!;
    readonly StringWriter log = new();

    public Uri BaseAddress { get; private set; } = null!;
    public TimeSpan StartToFirstOk { get; private set; }
    public string BinaryPath { get; } = Environment.GetEnvironmentVariable("AMS_BINARY") is { Length: > 0 } path
        ? path
        : Path.Combine(RepositoryRoot(), "artifacts", "publish", "Ams");

    public async Task InitializeAsync()
    {
        if (!File.Exists(BinaryPath))
            throw new FileNotFoundException($"No AOT binary at {BinaryPath}; run `just publish` first (or set AMS_BINARY).");
        var mariadbStart = MariaDbServer.StartAsync();
        var redisStart = RedisServer.StartAsync();
        mariadb = await mariadbStart;
        redis = await redisStart;
        await mariadb.CreateDatabaseAsync("ams");
        mariaDbConnection = mariadb.ConnectionString("ams");
        redisConnection = redis.ConnectionString;
        fileName = BinaryPath;
        // Every test user registers from 127.0.0.1: the per-address registration throttle (20 an
        // hour by default) would refuse the later tests' users. The throttle has its own tests.
        extraEnvironment = new Dictionary<string, string> { ["Registration__MaxPerAddress"] = "10000" };

        BaseAddress = new Uri($"http://127.0.0.1:{FreePort.Next()}");
        masterKeys = "app:" + Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32));
        await LaunchAsync();
    }

    string masterKeys = "";

    /// <summary>
    /// Starts <paramref name="fileName"/> (the AOT binary, or <c>dotnet</c> with the JIT build's dll)
    /// against servers the caller owns.
    /// <paramref name="untilHealthy"/> false returns once the process runs, for a test of its start itself.
    /// <paramref name="baseAddress"/>: where it serves, for a caller whose <paramref name="environment"/>
    /// names its listeners itself (Kestrel's own endpoint settings replace ASPNETCORE_URLS).
    /// </summary>
    public static async Task<AppProcess> LaunchAsync(string fileName, IEnumerable<string> arguments, string mariaDbConnection,
        string redisConnection, string masterKeys, IReadOnlyDictionary<string, string>? environment = null, bool untilHealthy = true,
        Uri? baseAddress = null)
    {
        var app = new AppProcess
        {
            fileName = fileName, arguments = arguments.ToArray(), mariaDbConnection = mariaDbConnection, redisConnection = redisConnection,
            masterKeys = masterKeys, extraEnvironment = environment ?? new Dictionary<string, string>(),
            BaseAddress = baseAddress ?? new Uri($"http://127.0.0.1:{FreePort.Next()}"),
        };
        await app.LaunchAsync(untilHealthy);
        return app;
    }

    public int ProcessId => process.Id;

    /// <summary>Stops the process (SIGTERM, as on a deploy) and starts it again on the same port and data.</summary>
    public async Task RestartAsync()
    {
        await StopAsync();
        await LaunchAsync();
    }

    async Task LaunchAsync(bool untilHealthy = true)
    {
        var start = new ProcessStartInfo(fileName, arguments)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = Path.GetDirectoryName(Path.GetFullPath(arguments.FirstOrDefault(File.Exists) ?? fileName))!,
        };
        start.Environment["ASPNETCORE_URLS"] = BaseAddress.ToString();
        start.Environment["ASPNETCORE_ENVIRONMENT"] = "Production";
        start.Environment["ConnectionStrings__MariaDb"] = mariaDbConnection;
        start.Environment["ConnectionStrings__Redis"] = redisConnection;
        start.Environment["Crypto__MasterKeys"] = masterKeys;
        foreach (var (key, value) in extraEnvironment) start.Environment[key] = value;
        var started = Stopwatch.StartNew();
        process = Process.Start(start)!;
        process.OutputDataReceived += (_, e) => { lock (log) log.WriteLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { lock (log) log.WriteLine(e.Data); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        if (!untilHealthy) return;

        using var probe = new HttpClient { BaseAddress = BaseAddress, Timeout = TimeSpan.FromSeconds(2) };
        while (true)
        {
            if (process.HasExited) throw new InvalidOperationException($"The binary exited with {process.ExitCode}:\n{Log}");
            try
            {
                if ((await probe.GetAsync("/healthz")).StatusCode == HttpStatusCode.OK) break;
            }
            catch (HttpRequestException) { }
            if (started.Elapsed > TimeSpan.FromSeconds(30)) throw new TimeoutException($"No 200 from /healthz in 30 s:\n{Log}");
            await Task.Delay(10);
        }
        StartToFirstOk = started.Elapsed;
    }

    public string Log { get { lock (log) return log.ToString(); } }

    /// <summary>SQL as root in the app's database, on the server this fixture started.</summary>
    public Task<string> SqlAsync(string sql) =>
        (mariadb ?? throw new InvalidOperationException("Only the fixture's own MariaDB takes SQL here.")).ExecuteAsRootAsync($"USE ams; {sql}");

    public string MariaDbConnection => mariaDbConnection;
    public string RedisConnection => redisConnection;
    public string MasterKeys => masterKeys;

    /// <summary>
    /// Runs the binary once more as a command (e.g. <c>admin list-users</c>) with the server's
    /// configuration, <paramref name="environment"/> on top (a null value removes a variable).
    /// </summary>
    public async Task<(int ExitCode, string Stdout, string Stderr)> RunCommandAsync(IEnumerable<string> commandArguments, string? stdin = null,
        IReadOnlyDictionary<string, string?>? environment = null)
    {
        var start = new ProcessStartInfo(fileName, arguments.Concat(commandArguments))
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            WorkingDirectory = Path.GetDirectoryName(Path.GetFullPath(fileName))!,
        };
        start.Environment["ASPNETCORE_ENVIRONMENT"] = "Production";
        start.Environment["ConnectionStrings__MariaDb"] = mariaDbConnection;
        start.Environment["ConnectionStrings__Redis"] = redisConnection;
        start.Environment["Crypto__MasterKeys"] = masterKeys;
        foreach (var (key, value) in extraEnvironment) start.Environment[key] = value;
        foreach (var (key, value) in environment ?? new Dictionary<string, string?>())
            if (value is null) start.Environment.Remove(key); else start.Environment[key] = value;
        using var command = Process.Start(start)!;
        var stdout = command.StandardOutput.ReadToEndAsync();
        var stderr = command.StandardError.ReadToEndAsync();
        if (stdin is not null) await command.StandardInput.WriteAsync(stdin);
        command.StandardInput.Close();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await command.WaitForExitAsync(timeout.Token);
        return (command.ExitCode, await stdout, await stderr);
    }

    public long ResidentBytes()
    {
        process.Refresh();
        return process.WorkingSet64;
    }

    public HttpClient Client(bool cookies = false) => new(new HttpClientHandler
    {
        AllowAutoRedirect = false,
        UseCookies = cookies,
        CookieContainer = new CookieContainer(),
    })
    { BaseAddress = BaseAddress };

    public async Task DisposeAsync()
    {
        await StopAsync();
        if (redis is not null) await redis.DisposeAsync();
        if (mariadb is not null) await mariadb.DisposeAsync();
    }

    /// <summary>Starts the process again after <see cref="StopAsync"/>, on the same port and data (a node back after an outage).</summary>
    public Task StartAgainAsync() => process is { HasExited: false }
        ? throw new InvalidOperationException($"The node on {BaseAddress} is running: kill it first.")
        : LaunchAsync();

    /// <summary>SIGKILL, as a crashed machine: no drain, open streams and requests just drop.</summary>
    public async Task KillAsync()
    {
        process.Kill();
        await process.WaitForExitAsync();
    }

    /// <summary>SIGSTOP, as a hung or swapped-out machine: its sockets stay open and nothing answers until <see cref="ResumeAsync"/>.</summary>
    public Task PauseAsync() => SignalAsync(19);   // SIGSTOP

    public Task ResumeAsync() => SignalAsync(18);   // SIGCONT

    // Not the kill binary: a signal to a node that has just exited printed "kill: (pid): No such
    // process" into the console of `just cluster` as it stopped.
    Task SignalAsync(int signal)
    {
        _ = ServerProcess.kill(process.Id, signal);
        return Task.CompletedTask;
    }

    public async Task StopAsync()
    {
        if (process is { HasExited: false })
        {
            // SIGTERM first: the host shuts down cleanly, as it would under `docker stop`.
            await SignalAsync(15);   // SIGTERM
            await SignalAsync(18);   // SIGCONT: a paused node takes its TERM once it runs again
            using var grace = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            try { await process.WaitForExitAsync(grace.Token); }
            catch (OperationCanceledException) { process.Kill(); }
        }
    }

    public static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Ams.sln"))) return dir.FullName;
        throw new InvalidOperationException("Ams.sln not found above the test binaries.");
    }
}
