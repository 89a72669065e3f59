using System.Diagnostics;
using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.RegularExpressions;

namespace Ams.Testing;

/// <summary>
/// One of the repository's sample proxy configurations (docs/proxy/) running for real in front of
/// one node or several, with TLS on a free loopback port. Only what a loopback test cannot have is rewritten:
/// the public name, the ports and the certificate; every other line is the sample's.
/// </summary>
public sealed class ReverseProxy : IAsyncDisposable
{
    static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(30);

    readonly ServerProcess process;
    readonly string directory;

    ReverseProxy(ServerProcess process, string directory, int port)
    {
        this.process = process;
        this.directory = directory;
        BaseAddress = new Uri($"https://127.0.0.1:{port}");
    }

    public Uri BaseAddress { get; }

    public string LogTail() => process.LogTail();

    /// <summary>A client of the proxy. Its certificate is self-made (nginx, HAProxy) or from Caddy's own CA: any is accepted.</summary>
    public HttpClient Client() => new(new HttpClientHandler
    {
        ServerCertificateCustomValidationCallback = HttpClientHandler.DangerousAcceptAnyServerCertificateValidator,
        AllowAutoRedirect = false,
        UseCookies = false,
    })
    { BaseAddress = BaseAddress, Timeout = TimeSpan.FromSeconds(30) };

    /// <param name="site">docs/proxy/nginx.conf: one <c>server</c> block, included into a minimal main configuration.</param>
    public static async Task<ReverseProxy> StartNginxAsync(string site, int upstreamPort)
    {
        var directory = Directory.CreateTempSubdirectory("ams-nginx-").FullName;
        var port = FreePort.Next();
        var (certificate, key) = WriteCertificate(directory);
        site = Replace(site, @"listen 443 ssl http2;", $"listen 127.0.0.1:{port} ssl http2;");
        site = Replace(site, @"ssl_certificate\s+\S+;", $"ssl_certificate {certificate};");
        site = Replace(site, @"ssl_certificate_key\s+\S+;", $"ssl_certificate_key {key};");
        site = Replace(site, @"127\.0\.0\.1:8082", $"127.0.0.1:{upstreamPort}");
        File.WriteAllText(Path.Combine(directory, "site.conf"), site);
        File.WriteAllText(Path.Combine(directory, "nginx.conf"), $$"""
            {{(Environment.UserName == "root" ? "user root;" : "")}}
            daemon off;
            worker_processes 1;
            pid {{directory}}/nginx.pid;
            error_log {{directory}}/error.log warn;
            events { worker_connections 256; }
            http {
                access_log off;
                client_body_temp_path {{directory}}/body;
                proxy_temp_path {{directory}}/proxy;
                fastcgi_temp_path {{directory}}/fastcgi;
                uwsgi_temp_path {{directory}}/uwsgi;
                scgi_temp_path {{directory}}/scgi;
                include {{directory}}/site.conf;
            }
            """);
        return await StartAsync("nginx", ["-p", directory, "-c", Path.Combine(directory, "nginx.conf"), "-e", Path.Combine(directory, "error.log")],
            directory, port, new Dictionary<string, string>());
    }

    /// <param name="caddyfile">docs/proxy/Caddyfile: its site address becomes the loopback port, with Caddy's internal CA.</param>
    public static async Task<ReverseProxy> StartCaddyAsync(string caddyfile, int upstreamPort)
    {
        var directory = Directory.CreateTempSubdirectory("ams-caddy-").FullName;
        var port = FreePort.Next();
        caddyfile = Replace(caddyfile, @"(?m)^chat\.example\.org \{", $"https://127.0.0.1:{port} {{\n    tls internal");
        caddyfile = Replace(caddyfile, @"127\.0\.0\.1:8082", $"127.0.0.1:{upstreamPort}");
        File.WriteAllText(Path.Combine(directory, "Caddyfile"), $$"""
            {
                admin off
                skip_install_trust
                auto_https disable_redirects
                http_port {{FreePort.Next()}}
                https_port {{port}}
                storage file_system {{directory}}/data
            }

            """ + caddyfile);
        return await StartAsync("caddy", ["run", "--config", Path.Combine(directory, "Caddyfile"), "--adapter", "caddyfile"], directory, port,
            new Dictionary<string, string> { ["HOME"] = directory, ["XDG_DATA_HOME"] = directory, ["XDG_CONFIG_HOME"] = directory });
    }

    /// <param name="config">docs/proxy/haproxy.cfg: its sample servers become <paramref name="upstreamPorts"/>.</param>
    public static async Task<ReverseProxy> StartHaproxyAsync(string config, IReadOnlyList<int> upstreamPorts)
    {
        var directory = Directory.CreateTempSubdirectory("ams-haproxy-").FullName;
        var port = FreePort.Next();
        var (certificate, key) = WriteCertificate(directory);
        var bundle = Path.Combine(directory, "bundle.pem");   // HAProxy reads the certificate and its key from one file
        File.WriteAllText(bundle, File.ReadAllText(certificate) + "\n" + File.ReadAllText(key) + "\n");
        // The one limit a test machine may not have: file descriptors for 20,000 connections.
        config = Replace(config, @"(?m)(?<=^\s*)maxconn \d+", "maxconn 1000");
        config = Replace(config, @"bind :443 ssl crt \S+ alpn h2,http/1.1", $"bind 127.0.0.1:{port} ssl crt {bundle} alpn h2,http/1.1");
        config = Replace(config, @"(?m)^(\s*server ams\d+ \S+ check\r?\n)+",
            string.Concat(upstreamPorts.Select((p, i) => $"    server ams{i + 1} 127.0.0.1:{p} check\n")));
        var path = Path.Combine(directory, "haproxy.cfg");
        File.WriteAllText(path, config);
        return await StartAsync("haproxy", ["-f", path, "-db"], directory, port, new Dictionary<string, string>());
    }

    static async Task<ReverseProxy> StartAsync(string fileName, string[] arguments, string directory, int port, IReadOnlyDictionary<string, string> environment)
    {
        var process = await ServerProcess.StartAsync(fileName, arguments, Path.Combine(directory, "server.log"), directory, CancellationToken.None, environment);
        var proxy = new ReverseProxy(process, directory, port);
        var started = Stopwatch.StartNew();
        while (!await FreePort.AcceptsAsync(port))
        {
            if (process.HasExited || started.Elapsed > StartTimeout)
            {
                var log = process.LogTail() + ReadIfThere(Path.Combine(directory, "error.log"));
                await proxy.DisposeAsync();
                throw new InvalidOperationException($"{fileName} did not accept connections on port {port}:\n{log}");
            }
            await Task.Delay(50);
        }
        // Accepting TCP is not yet serving TLS and HTTP: wait for any HTTP answer through it.
        using var client = proxy.Client();
        client.Timeout = TimeSpan.FromSeconds(5);
        while (true)
        {
            try
            {
                using var _ = await client.GetAsync("/livez");
                return proxy;
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException && started.Elapsed < StartTimeout)
            {
                await Task.Delay(100);
            }
        }
    }

    /// <summary>A self-signed ECDSA certificate for 127.0.0.1, as PEM files nginx reads.</summary>
    static (string Certificate, string Key) WriteCertificate(string directory)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=127.0.0.1", key, HashAlgorithmName.SHA256);
        var names = new SubjectAlternativeNameBuilder();
        names.AddIpAddress(IPAddress.Loopback);
        request.CertificateExtensions.Add(names.Build());
        using var certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddDays(1));
        var certificatePath = Path.Combine(directory, "cert.pem");
        var keyPath = Path.Combine(directory, "key.pem");
        File.WriteAllText(certificatePath, certificate.ExportCertificatePem());
        File.WriteAllText(keyPath, key.ExportPkcs8PrivateKeyPem());
        return (certificatePath, keyPath);
    }

    /// <summary>Replaces what must be in the sample, so a changed sample fails here rather than testing something else.</summary>
    static string Replace(string text, string pattern, string replacement)
    {
        var regex = new Regex(pattern);
        if (!regex.IsMatch(text)) throw new InvalidOperationException($"The sample no longer contains /{pattern}/.");
        return regex.Replace(text, replacement.Replace("$", "$$"));
    }

    static string ReadIfThere(string path) => File.Exists(path) ? "\n" + File.ReadAllText(path) : "";

    public async ValueTask DisposeAsync()
    {
        await process.StopAsync(TimeSpan.FromSeconds(10));
        process.Dispose();
        try { Directory.Delete(directory, recursive: true); } catch (DirectoryNotFoundException) { }
    }
}
