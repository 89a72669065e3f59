using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net.Sockets;
using System.Text;
using System.Text.RegularExpressions;
using Ams.Testing;

namespace Ams.Bench;

/// <summary>
/// Prosody (Debian's package) as the peer: an XMPP server with its storage and message archive
/// (mod_mam) on the same MariaDB, doing the same job: a one-to-one message stored and delivered
/// to an online recipient.
/// </summary>
sealed class Prosody : IAsyncDisposable
{
    public const string Host = "bench.local";
    readonly Process process;
    readonly string directory;
    public int Port { get; }

    Prosody(Process process, string directory, int port)
    {
        this.process = process;
        this.directory = directory;
        Port = port;
    }

    public static bool Installed => File.Exists("/usr/bin/prosody") && File.Exists("/usr/lib/prosody/modules/mod_storage_sql.lua");

    public static async Task<Prosody> StartAsync(MariaDbServer mariadb, IEnumerable<string> users)
    {
        await mariadb.CreateDatabaseAsync("prosody");
        var directory = Directory.CreateTempSubdirectory("ams-prosody-").FullName;
        Directory.CreateDirectory(Path.Combine(directory, "data"));
        Directory.CreateDirectory(Path.Combine(directory, "certs"));
        // As root (CI, this machine), prosodyctl would switch to the prosody user, which cannot
        // write this folder; let it stay root for the length of the benchmark.
        var asRoot = Environment.UserName == "root" ? "prosody_user = \"root\"\nprosody_group = \"root\"\nrun_as_root = true" : "";
        var port = FreePort.Next();
        var connection = new MySqlConnector.MySqlConnectionStringBuilder(mariadb.ConnectionString("prosody"));
        var config = Path.Combine(directory, "prosody.cfg.lua");
        await File.WriteAllTextAsync(config, $$"""
            {{asRoot}}
            pidfile = "{{directory}}/prosody.pid"
            certificates = "{{directory}}/certs"
            data_path = "{{directory}}/data"
            daemonize = false
            interfaces = { "127.0.0.1" }
            c2s_ports = { {{port}} }
            s2s_ports = { }
            http_ports = { }
            https_ports = { }
            modules_enabled = { "roster"; "saslauth"; "disco"; "mam"; "ping" }
            modules_disabled = { "s2s"; "tls" }
            c2s_require_encryption = false
            allow_unencrypted_plain_auth = true
            authentication = "internal_hashed"
            storage = "sql"
            sql = { driver = "MySQL", database = "prosody", username = "{{connection.UserID}}", password = "{{connection.Password}}", host = "127.0.0.1", port = {{connection.Port}} }
            default_archive_policy = true
            archive_expires_after = "never"
            -- Kestrel sends AMS's events with Nagle off; Prosody keeps it on unless told, which
            -- can hold a small stanza back for a delayed ACK. Off here, so both answer as soon as they can.
            network_settings = { nagle = false }
            log = { { levels = { min = "error" }, to = "file", filename = "{{directory}}/prosody.log" } }
            VirtualHost "{{Host}}"
            """);
        foreach (var user in users)
        {
            using var register = Process.Start(new ProcessStartInfo("prosodyctl", ["--config", config, "register", user, Host, Client.Password])
                { RedirectStandardOutput = true, RedirectStandardError = true })!;
            await register.WaitForExitAsync();
            if (register.ExitCode != 0)
                throw new InvalidOperationException($"prosodyctl register failed: {await register.StandardOutput.ReadToEndAsync()} {await register.StandardError.ReadToEndAsync()}");
        }
        var process = Process.Start(new ProcessStartInfo("prosody", ["--config", config, "-F"]) { RedirectStandardOutput = true, RedirectStandardError = true })!;
        var started = Stopwatch.StartNew();
        while (!await FreePort.AcceptsAsync(port))
        {
            if (process.HasExited || started.Elapsed > TimeSpan.FromSeconds(20))
                throw new InvalidOperationException($"prosody did not start: {(File.Exists(Path.Combine(directory, "prosody.log")) ? File.ReadAllText(Path.Combine(directory, "prosody.log")) : "")}");
            await Task.Delay(50);
        }
        return new Prosody(process, directory, port);
    }

    public async ValueTask DisposeAsync()
    {
        if (!process.HasExited)
        {
            using (var term = Process.Start("kill", ["-TERM", process.Id.ToString()])) await term.WaitForExitAsync();
            using var grace = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            try { await process.WaitForExitAsync(grace.Token); } catch (OperationCanceledException) { process.Kill(); }
        }
        Directory.Delete(directory, recursive: true);
    }
}

/// <summary>A minimal XMPP client: plain SASL on loopback, bind, presence, chat messages in and out.</summary>
sealed partial class Xmpp : IAsyncDisposable
{
    readonly TcpClient tcp;
    readonly NetworkStream stream;
    readonly StringBuilder inbox = new();
    readonly Task? reader;
    readonly CancellationTokenSource stop = new();
    readonly SemaphoreSlim writeLock = new(1, 1);

    Xmpp(TcpClient tcp, Action<string>? onBody)
    {
        this.tcp = tcp;
        stream = tcp.GetStream();
        if (onBody is not null) reader = Task.Run(() => ReadBodiesAsync(onBody));
    }

    public static async Task<Xmpp> ConnectAsync(int port, string user, Action<string>? onBody)
    {
        var tcp = new TcpClient { NoDelay = true };
        await tcp.ConnectAsync("127.0.0.1", port);
        var stream = tcp.GetStream();
        var buffer = new StringBuilder();
        async Task Say(string xml) => await stream.WriteAsync(Encoding.UTF8.GetBytes(xml));
        async Task Await(string marker)
        {
            var bytes = new byte[8192];
            while (!buffer.ToString().Contains(marker, StringComparison.Ordinal))
            {
                var n = await stream.ReadAsync(bytes);
                if (n == 0) throw new IOException($"prosody closed the stream waiting for {marker}: {buffer}");
                buffer.Append(Encoding.UTF8.GetString(bytes, 0, n));
                if (buffer.ToString().Contains("<failure")) throw new IOException($"XMPP failure: {buffer}");
            }
            buffer.Clear();
        }
        const string open = "<?xml version='1.0'?><stream:stream to='" + Prosody.Host + "' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>";
        await Say(open);
        await Await("</stream:features>");
        var plain = Convert.ToBase64String(Encoding.UTF8.GetBytes($"\0{user}\0{Client.Password}"));
        await Say($"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{plain}</auth>");
        await Await("<success");
        await Say(open);
        await Await("</stream:features>");
        await Say("<iq type='set' id='bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>bench</resource></bind></iq>");
        await Await("</iq>");
        await Say("<presence/>");
        return new Xmpp(tcp, onBody);
    }

    public async Task SendAsync(string to, string body)
    {
        var xml = Encoding.UTF8.GetBytes($"<message to='{to}@{Prosody.Host}' type='chat'><body>{body}</body></message>");
        await writeLock.WaitAsync();
        try { await stream.WriteAsync(xml); }
        finally { writeLock.Release(); }
    }

    async Task ReadBodiesAsync(Action<string> onBody)
    {
        var bytes = new byte[65536];
        try
        {
            while (!stop.IsCancellationRequested)
            {
                var n = await stream.ReadAsync(bytes, stop.Token);
                if (n == 0) return;
                inbox.Append(Encoding.UTF8.GetString(bytes, 0, n));
                var text = inbox.ToString();
                var consumed = 0;
                foreach (Match match in Body().Matches(text))
                {
                    onBody(match.Groups[1].Value);
                    consumed = match.Index + match.Length;
                }
                inbox.Remove(0, consumed);
            }
        }
        catch (Exception e) when (e is OperationCanceledException or IOException or ObjectDisposedException) { }
    }

    [GeneratedRegex("<body>([^<]*)</body>")]
    private static partial Regex Body();

    public async ValueTask DisposeAsync()
    {
        stop.Cancel();
        try { await stream.WriteAsync("</stream:stream>"u8.ToArray()); } catch (IOException) { }
        tcp.Dispose();
        if (reader is not null) await reader.WaitAsync(TimeSpan.FromSeconds(5)).ContinueWith(_ => { });
    }
}
