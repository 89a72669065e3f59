using System.Diagnostics;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text.RegularExpressions;

namespace Ams.Testing;

/// <summary>
/// A private mariadbd under a temporary directory, listening on a free loopback port.
/// Tests create one database per app instance (<see cref="CreateDatabaseAsync"/>) and connect as
/// user <c>ams</c>; the root account is reachable only over <see cref="RootSocketPath"/>.
/// </summary>
public sealed partial class MariaDbServer : IAsyncDisposable
{
    private const string UserName = "ams";
    private const int PortAttempts = 5;
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan StopGrace = TimeSpan.FromSeconds(20);

    private ServerProcess _process;
    private readonly string _baseDir;
    private readonly string _password;
    private readonly bool _durable;
    private int _disposed;

    private MariaDbServer(ServerProcess process, string baseDir, int port, string password, bool durable)
    {
        _process = process;
        _baseDir = baseDir;
        Port = port;
        _password = password;
        _durable = durable;
    }

    public int Port { get; }

    public string DataDir => Path.Combine(_baseDir, "data");

    public string RootSocketPath => Path.Combine(_baseDir, "s.sock");

    /// <summary>The server's stdout and stderr, i.e. its error log.</summary>
    public string LogPath => _process.LogPath;

    /// <summary>Freezes the server (SIGSTOP): connections stay open, nothing is answered until <see cref="Resume"/>.</summary>
    public void Pause() => _process.Pause();

    public void Resume() => _process.Resume();

    /// <param name="durable">The server's own defaults: an fsync per commit
    /// (<c>innodb_flush_log_at_trx_commit=1</c>) and InnoDB's default sizes; what the benchmarks
    /// measure. Tests flush once a second and run small.</param>
    public static async Task<MariaDbServer> StartAsync(CancellationToken ct = default, bool durable = false)
    {
        // Layout: data/ (datadir), tmp/, s.sock, mariadbd.log. Nothing else may live in the datadir:
        // every subdirectory there shows up as a database. The base path is kept short because
        // the socket path must fit the 108-byte sun_path.
        var baseDir = Directory.CreateTempSubdirectory("ams-mariadb-").FullName;
        var dataDir = Directory.CreateDirectory(Path.Combine(baseDir, "data")).FullName;
        // A private tmpdir: parallel servers sharing /tmp collide on internal temporary table
        // files (seen with 8 parallel mariadb-install-db runs: "Unknown table 'mysql.tmp_user_sys'").
        var tmpDir = Directory.CreateDirectory(Path.Combine(baseDir, "tmp")).FullName;
        var socketPath = Path.Combine(baseDir, "s.sock");
        ServerProcess? process = null;
        try
        {
            await CopyDirectoryAsync(await DataDirTemplate.Value, dataDir, ct);

            var started = Stopwatch.StartNew();
            for (var attempt = 1; ; attempt++)
            {
                var port = FreePort.Next();
                process = await ServerProcess.StartAsync("mariadbd",
                    ServerArguments(dataDir, tmpDir, socketPath, port, durable), Path.Combine(baseDir, "mariadbd.log"), baseDir, ct);
                if (await WaitUntilReadyAsync(process, socketPath, port, started, ct))
                {
                    var password = Convert.ToHexString(RandomNumberGenerator.GetBytes(16));
                    await RootSqlAsync(socketPath,
                        $"CREATE USER '{UserName}'@'127.0.0.1' IDENTIFIED BY '{password}'; " +
                        $"GRANT ALL ON *.* TO '{UserName}'@'127.0.0.1';", ct);
                    return new MariaDbServer(process, baseDir, port, password, durable);
                }

                var log = process.LogTail();
                process.Dispose();
                process = null;
                // Another process took the port between FreePort.Next() and the bind: pick another.
                if (attempt < PortAttempts && log.Contains("Bind on TCP/IP port", StringComparison.Ordinal))
                {
                    continue;
                }
                throw new InvalidOperationException($"mariadbd exited before it was ready. Log tail:\n{log}");
            }
        }
        catch
        {
            if (process is not null)
            {
                await process.StopAsync(StopGrace);
                process.Dispose();
            }
            DeleteDirectory(baseDir);
            throw;
        }
    }

    /// <summary>Shuts the server down (SIGTERM, SIGKILL after 20 s), keeping its data for <see cref="StartAgainAsync"/>.</summary>
    public Task StopAsync() => _process.StopAsync(StopGrace);

    /// <summary>Starts the stopped server again on the same port and data.</summary>
    public async Task StartAgainAsync(CancellationToken ct = default)
    {
        if (!_process.HasExited) throw new InvalidOperationException("mariadbd is still running");
        _process.Dispose();
        _process = await ServerProcess.StartAsync("mariadbd",
            ServerArguments(DataDir, Path.Combine(_baseDir, "tmp"), RootSocketPath, Port, _durable), Path.Combine(_baseDir, "mariadbd.log"), _baseDir, ct);
        if (!await WaitUntilReadyAsync(_process, RootSocketPath, Port, Stopwatch.StartNew(), ct))
            throw new InvalidOperationException($"mariadbd exited before it was ready again. Log tail:\n{_process.LogTail()}");
    }

    /// <summary>MySqlConnector connection string for <paramref name="database"/> as user <c>ams</c>.</summary>
    public string ConnectionString(string database) =>
        $"Server=127.0.0.1;Port={Port};User ID={UserName};Password={_password};Database={database};";

    public Task CreateDatabaseAsync(string name, CancellationToken ct = default) =>
        ExecuteAsRootAsync(
            $"CREATE DATABASE IF NOT EXISTS `{CheckIdentifier(name)}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;", ct);

    /// <summary>Runs SQL as root through the <c>mariadb</c> CLI; returns its tab-separated output.</summary>
    public Task<string> ExecuteAsRootAsync(string sql, CancellationToken ct = default) =>
        RootSqlAsync(RootSocketPath, sql, ct);

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }
        await _process.StopAsync(StopGrace);
        _process.Dispose();
        DeleteDirectory(_baseDir);
    }

    private static List<string> ServerArguments(string dataDir, string tmpDir, string socketPath, int port, bool durable) =>
    [
        "--no-defaults",
        $"--user={Environment.UserName}",
        $"--datadir={dataDir}",
        $"--tmpdir={tmpDir}",
        $"--socket={socketPath}",
        $"--port={port}",
        "--bind-address=127.0.0.1",
        "--skip-log-bin",
        // The benchmarks' server keeps MariaDB's own defaults: an fsync per commit, a 128 MB buffer
        // pool and a 96 MB redo log (the tests' 16 MB log cost AMS, which writes more redo per
        // message than the floor or Prosody, ~1 ms of p50 at 200 sends/s: docs/benchmarks-history.md).
        .. durable ? CommonServerArguments : SmallServerArguments,
    ];

    static readonly string[] CommonServerArguments =
    [
        "--skip-name-resolve",
        "--character-set-server=utf8mb4",
        "--collation-server=utf8mb4_unicode_ci",
        "--max-connections=500",
    ];

    /// <summary>Small and relaxed durability: many of these run side by side and hold nothing of value.</summary>
    internal static readonly string[] SmallServerArguments =
    [
        .. CommonServerArguments,
        "--innodb-buffer-pool-size=64M",
        "--innodb-log-file-size=16M",
        "--innodb-flush-log-at-trx-commit=2",
    ];

    /// <summary>
    /// Ready means our process is alive and both its TCP port and its unix socket accept. The
    /// socket is what proves the TCP listener is ours: mariadbd binds TCP before it creates the
    /// socket and aborts if the bind fails, so a port stolen by someone else never looks ready.
    /// </summary>
    private static async Task<bool> WaitUntilReadyAsync(
        ServerProcess process, string socketPath, int port, Stopwatch started, CancellationToken ct)
    {
        while (!process.HasExited)
        {
            if (started.Elapsed > StartTimeout)
            {
                throw new TimeoutException(
                    $"mariadbd did not accept connections within {StartTimeout.TotalSeconds} s. Log tail:\n{process.LogTail()}");
            }
            if (await SocketAcceptsAsync(socketPath, ct) && await FreePort.AcceptsAsync(port, ct) && !process.HasExited)
            {
                return true;
            }
            await Task.Delay(25, ct);
        }
        return false;
    }

    internal static async Task<bool> SocketAcceptsAsync(string path, CancellationToken ct)
    {
        if (!File.Exists(path))
        {
            return false;
        }
        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            await socket.ConnectAsync(new UnixDomainSocketEndPoint(path), ct);
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    internal static Task<string> RootSqlAsync(string socketPath, string sql, CancellationToken ct) =>
        ProcessRunner.RunAsync("mariadb",
            ["--no-defaults", $"--socket={socketPath}", "-uroot", "--batch", "-e", sql], ct);

    internal static string CheckIdentifier(string name) =>
        IdentifierPattern().IsMatch(name)
            ? name
            : throw new ArgumentException($"'{name}' is not a plain database name ([A-Za-z0-9_], at most 64).", nameof(name));

    [GeneratedRegex("^[A-Za-z0-9_]{1,64}$")]
    private static partial Regex IdentifierPattern();

    /// <summary>
    /// A freshly installed datadir, made once per machine and mariadbd build and copied for every
    /// server: mariadb-install-db costs ~2.3 s, a copy ~0.3 s, and a test run (or one mutant's run
    /// under Stryker) starts one server or more. Made under a private name and renamed into place,
    /// so concurrent test hosts never see half a template.
    /// </summary>
    internal static readonly Lazy<Task<string>> DataDirTemplate = new(CreateTemplateAsync);

    private static async Task<string> CreateTemplateAsync()
    {
        var version = await ProcessRunner.RunAsync("mariadbd", ["--version"]);
        var key = Convert.ToHexString(SHA256.HashData(System.Text.Encoding.UTF8.GetBytes($"{version}|{Environment.UserName}")))[..16];
        var template = Path.Combine(Path.GetTempPath(), $"ams-mariadb-template-{key}");
        if (Directory.Exists(template))
        {
            return template;
        }

        var building = Directory.CreateTempSubdirectory("ams-mariadb-template-building-").FullName;
        try
        {
            var dataDir = Directory.CreateDirectory(Path.Combine(building, "data")).FullName;
            // A private tmpdir: parallel installs sharing /tmp collide on internal temporary table
            // files (seen with 8 parallel mariadb-install-db runs: "Unknown table 'mysql.tmp_user_sys'").
            var tmpDir = Directory.CreateDirectory(Path.Combine(building, "tmp")).FullName;
            await ProcessRunner.RunAsync("mariadb-install-db",
            [
                "--no-defaults",
                // Required when running as root; harmless (own user) otherwise.
                $"--user={Environment.UserName}",
                $"--datadir={dataDir}",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
                "--skip-name-resolve",
                // Passed on to the bootstrap server.
                $"--tmpdir={tmpDir}",
            ]);
            try
            {
                Directory.Move(dataDir, template);
            }
            catch (IOException) when (Directory.Exists(template))
            {
                // Another test host got there first; theirs is as good as ours.
            }
            return template;
        }
        finally
        {
            DeleteDirectory(building);
        }
    }

    internal static Task CopyDirectoryAsync(string from, string to, CancellationToken ct) => Task.Run(() =>
    {
        foreach (var directory in Directory.EnumerateDirectories(from, "*", SearchOption.AllDirectories))
        {
            Directory.CreateDirectory(Path.Combine(to, Path.GetRelativePath(from, directory)));
        }
        foreach (var file in Directory.EnumerateFiles(from, "*", SearchOption.AllDirectories))
        {
            ct.ThrowIfCancellationRequested();
            File.Copy(file, Path.Combine(to, Path.GetRelativePath(from, file)));
        }
    }, ct);

    internal static void DeleteDirectory(string path)
    {
        try
        {
            Directory.Delete(path, recursive: true);
        }
        catch (DirectoryNotFoundException)
        {
        }
    }
}
