using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using Ams.Testing;

namespace Ams.Smoke;

/// <summary>The AOT binary as operators watch it: version, probes, metrics, JSON logs, and a prompt shutdown with a live stream open.</summary>
public sealed class OperationsSmokeTests(AppProcess app) : IClassFixture<AppProcess>
{
    [Fact]
    public async Task Version_probes_and_metrics()
    {
        using var client = app.Client();
        var version = (await client.GetFromJsonAsync<JsonObject>("/api/version"))!;
        Assert.Matches(@"^\d+\.\d+\.\d+", version["version"]!.GetValue<string>());
        Assert.Matches("^[0-9a-f]{40}$", version["commit"]!.GetValue<string>());   // built inside the git checkout
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/livez")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/readyz")).StatusCode);
        // Uptime monitors that probe with HEAD got 405.
        foreach (var probe in new[] { "/livez", "/readyz", "/healthz" })
        {
            using var head = await client.SendAsync(new HttpRequestMessage(HttpMethod.Head, probe));
            Assert.Equal((HttpStatusCode.OK, 0), (head.StatusCode, (await head.Content.ReadAsByteArrayAsync()).Length));
        }
        var (_, user) = await app.UserAsync("om");
        var (other, _) = await app.UserAsync("om");
        Assert.Equal(HttpStatusCode.Created, (await user.PostAsJsonAsync("/api/messages", new { to = other, body = "metered" })).StatusCode);
        var metrics = await client.GetStringAsync("/metrics");   // from loopback: allowed by default
        Assert.Matches(@"(?m)^ams_messages_sent_total [1-9]", metrics);
        Assert.Matches(@"(?m)^ams_passwords_refused_total \d+$", metrics);   // served before its first refusal, for alerts
        Assert.Matches(@"(?m)^http_server_request_duration_seconds_count\{.*http_route=""/api/messages"".*\} [1-9]", metrics);
        Assert.Matches(@"(?m)^dotnet_process_memory_working_set_bytes [1-9]", metrics);
    }

    [Fact]
    public async Task Requests_with_a_bad_token_are_answered_401_without_a_log_line_each()
    {
        using var client = app.Client();
        var marker = $"/api/me?probe={Guid.NewGuid():N}";
        for (var i = 0; i < 3; i++)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, marker);
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", "ams_not-a-token-" + i);
            Assert.Equal(HttpStatusCode.Unauthorized, (await client.SendAsync(request)).StatusCode);
        }
        // A flood of guessed tokens would otherwise write two lines a request (the handler's "was not
        // authenticated" and "was challenged"); guessing passwords is what the security events record.
        Assert.DoesNotContain("was not authenticated", app.Log);
        Assert.DoesNotContain("was challenged", app.Log);
    }

    [Fact]
    public async Task The_AOT_binary_exports_its_metrics_over_OTLP_when_an_endpoint_is_set()
    {
        await using var collector = await OtlpCollector.StartAsync();
        var node = await AppProcess.LaunchAsync(app.BinaryPath, [], app.MariaDbConnection, app.RedisConnection, app.MasterKeys,
            new Dictionary<string, string>
            {
                ["OTEL_EXPORTER_OTLP_ENDPOINT"] = collector.Address,
                ["OTEL_EXPORTER_OTLP_PROTOCOL"] = "http/protobuf",
                ["OTEL_METRIC_EXPORT_INTERVAL"] = "300",
            });
        try
        {
            var (_, user) = await SmokeUsers.UserAsync(node.Client(), "ox");
            var (other, _) = await SmokeUsers.UserAsync(node.Client(), "ox");
            Assert.Equal(HttpStatusCode.Created, (await user.PostAsJsonAsync("/api/messages", new { to = other, body = "exported" })).StatusCode);
            OtlpCollector.Request? export = null;
            for (var i = 0; i < 100 && export is null; i++, await Task.Delay(100))
                export = collector.Received.FirstOrDefault(r => r.Text.Contains("ams.messages.sent") && r.Text.Contains("http.server.request.duration"));
            Assert.True(export is not null, $"no export with AMS's and ASP.NET Core's metrics in {collector.Received.Count} requests:\n{node.Log}");
            Assert.Equal("/v1/metrics", export.Path);
            Assert.Contains("service.name", export.Text);
        }
        finally
        {
            await node.StopAsync();
        }
    }

    static int SocketEventThreads(AppProcess node) =>
        Directory.GetDirectories($"/proc/{node.ProcessId}/task").Count(task => File.ReadAllText(Path.Combine(task, "comm")).Trim() == ".NET Sockets");

    [Fact]
    public async Task The_AOT_binary_serves_with_socket_completions_inline_when_the_operator_sets_1()
    {
        // The runtime makes one socket event thread per core when completions run on them, and
        // one for up to 30 cores otherwise, so on a machine of 2 or more cores the count tells.
        Assert.True(Environment.ProcessorCount > 1, "needs 2 cores or more to tell the modes apart");
        // The fixture's node runs with whatever the test run's environment says: compare explicit settings.
        var pooled = await AppProcess.LaunchAsync(app.BinaryPath, [], app.MariaDbConnection, app.RedisConnection, app.MasterKeys,
            new Dictionary<string, string> { ["DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS"] = "0" });
        try { Assert.Equal(1, SocketEventThreads(pooled)); }
        finally { await pooled.StopAsync(); }
        var inline = await AppProcess.LaunchAsync(app.BinaryPath, [], app.MariaDbConnection, app.RedisConnection, app.MasterKeys,
            new Dictionary<string, string> { ["DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS"] = "1" });
        try
        {
            Assert.Equal(Environment.ProcessorCount, SocketEventThreads(inline));
            // Registering and signing in hash on the thread pool; the send and the inbox go through MariaDB and Redis.
            var (other, otherClient) = await SmokeUsers.UserAsync(inline.Client(), "sc");
            var (_, user) = await SmokeUsers.UserAsync(inline.Client(), "sc");
            Assert.Equal(HttpStatusCode.Created, (await user.PostAsJsonAsync("/api/messages", new { to = other, body = "inline" })).StatusCode);
            var inbox = await otherClient.GetFromJsonAsync<JsonArray>("/api/conversations");
            Assert.Single(inbox!);
        }
        finally
        {
            await inline.StopAsync();
        }
    }

    [Fact]
    public async Task A_node_given_a_cleartext_HTTP2_listener_serves_the_API_and_event_streams_over_it()
    {
        // What the bench's 50,000 streams ride on (README, "Behind a reverse proxy" and Figures):
        // Kestrel's own endpoint settings, an HTTP/1.1 listener and an HTTP/2-only one.
        var (http, h2c) = (new Uri($"http://127.0.0.1:{FreePort.Next()}"), new Uri($"http://127.0.0.1:{FreePort.Next()}"));
        var node = await AppProcess.LaunchAsync(app.BinaryPath, [], app.MariaDbConnection, app.RedisConnection, app.MasterKeys,
            new Dictionary<string, string>
            {
                ["Kestrel__Endpoints__Http__Url"] = http.ToString(),
                ["Kestrel__Endpoints__H2c__Url"] = h2c.ToString(),
                ["Kestrel__Endpoints__H2c__Protocols"] = "Http2",
                ["ASPNETCORE_URLS"] = "",   // as an operator who names the listeners this way would leave it
            }, baseAddress: http);
        try
        {
            HttpClient H2() => new(new SocketsHttpHandler()) { BaseAddress = h2c, DefaultRequestVersion = HttpVersion.Version20, DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact };
            var (other, listener) = await SmokeUsers.UserAsync(H2(), "h2");
            var (_, sender) = await SmokeUsers.UserAsync(H2(), "h2");
            // Three streams of one user (one connection carries them all), then a send over HTTP/2.
            var streams = new List<(HttpResponseMessage Response, StreamReader Reader)>();
            for (var i = 0; i < 3; i++)
            {
                var request = new HttpRequestMessage(HttpMethod.Get, "/api/events") { Version = HttpVersion.Version20, VersionPolicy = HttpVersionPolicy.RequestVersionExact };
                request.Headers.Accept.ParseAdd("text/event-stream");
                var response = await listener.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
                Assert.Equal((HttpStatusCode.OK, HttpVersion.Version20, "text/event-stream"), (response.StatusCode, response.Version, response.Content.Headers.ContentType?.MediaType));
                streams.Add((response, new StreamReader(await response.Content.ReadAsStreamAsync())));
            }
            var sent = await sender.PostAsJsonAsync("/api/messages", new { to = other, body = "over h2c" });
            Assert.Equal((HttpStatusCode.Created, HttpVersion.Version20), (sent.StatusCode, sent.Version));
            // A body over the limit is refused with a 413 the sender reads: Debian's curl dropped it
            // when the stream was reset under its upload.
            var oversized = Path.Combine(Path.GetTempPath(), $"ams-1mb-{Guid.NewGuid():N}.json");
            await File.WriteAllTextAsync(oversized, "{\"body\":\"" + new string('x', 1 << 20) + "\"}");
            try
            {
                using var curl = Process.Start(new ProcessStartInfo("curl", ["-s", "-o", "/dev/null", "-w", "%{http_code} %{http_version}", "--http2-prior-knowledge",
                    "-H", "Content-Type: application/json", "--data-binary", "@" + oversized, new Uri(h2c, "/api/register").ToString()]) { RedirectStandardOutput = true })!;
                var written = await curl.StandardOutput.ReadToEndAsync();
                await curl.WaitForExitAsync();
                Assert.Equal((0, "413 2"), (curl.ExitCode, written.Trim()));
            }
            finally { File.Delete(oversized); }
            using var wait = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            foreach (var (_, reader) in streams)
            {
                string? line;
                do line = await reader.ReadLineAsync(wait.Token);
                while (line is not null && !line.StartsWith("data: {", StringComparison.Ordinal));
                Assert.Contains("\"body\":\"over h2c\"", line);
            }
            // The HTTP/1.1 listener serves beside it.
            using var plain = node.Client();
            Assert.Equal(HttpStatusCode.OK, (await plain.GetAsync("/readyz")).StatusCode);
            // A client that gives a stream up resets it (RST_STREAM) and keeps the connection: the
            // node must end the stream all the same, or each such stream would stay open for good.
            Assert.Equal(3, await node.OpenStreamsAsync());
            foreach (var (response, _) in streams) response.Dispose();
            Assert.Equal(0, await SmokeMetrics.StreamsLeftOpenAsync(TimeSpan.FromSeconds(5), node));
            Assert.Equal(HttpStatusCode.OK, (await listener.GetAsync("/api/me")).StatusCode);   // the connection carries on
            // The container's HEALTHCHECK finds the listeners Kestrel's settings name (it asked
            // the default port), the HTTP/2-only one over HTTP/2; and no default was "overridden".
            Assert.Equal((0, $"{http}healthz: 200"), await HealthCheckAsync(("Kestrel__Endpoints__Http__Url", http.ToString()),
                ("Kestrel__Endpoints__H2c__Url", h2c.ToString()), ("Kestrel__Endpoints__H2c__Protocols", "Http2"), ("ASPNETCORE_HTTP_PORTS", "8080")));
            Assert.Equal((0, $"{h2c}healthz: 200"), await HealthCheckAsync(("Kestrel__Endpoints__H2c__Url", h2c.ToString()), ("Kestrel__Endpoints__H2c__Protocols", "Http2")));
            Assert.DoesNotContain("Overriding address", node.Log);
        }
        finally
        {
            await node.StopAsync();
        }
    }

    // `Ams --healthcheck` with only these variables set: its exit code and the first words of its line.
    async Task<(int ExitCode, string Said)> HealthCheckAsync(params (string Name, string Value)[] environment)
    {
        var start = new ProcessStartInfo(app.BinaryPath, "--healthcheck") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var name in start.Environment.Keys.Where(n => n.StartsWith("ASPNETCORE_", StringComparison.Ordinal) || n.StartsWith("Kestrel", StringComparison.OrdinalIgnoreCase)
            || n is "URLS" or "HTTP_PORTS" or "AMS_HEALTHCHECK_URL").ToList())
            start.Environment.Remove(name);
        foreach (var (name, value) in environment) start.Environment[name] = value;
        using var probe = Process.Start(start)!;
        var said = await probe.StandardOutput.ReadToEndAsync();
        await probe.WaitForExitAsync();
        return (probe.ExitCode, string.Join(' ', said.Trim().Split(' ').Take(2)));
    }

    [Fact]
    public async Task A_serving_node_holds_both_its_Redis_connections_before_it_first_waits_for_MariaDB()
    {
        // Both are made synchronously, so they must be made before anything awaits a socket: with
        // inline completions a connect made after such an await may block the event thread that
        // would complete it, and wait out its timeout. They are, while the app is built: FastEndpoints
        // makes each endpoint once to map its route, and the session store they need connects both.
        await using var redis = await RedisServer.StartAsync();
        var nowhere = $"Server=127.0.0.1;Port={FreePort.Next()};User ID=ams;Password=unused;Database=ams;Connection Timeout=1;";
        // With a replica to wait for, sessions and revocations are written on a connection of their own.
        var node = await AppProcess.LaunchAsync(app.BinaryPath, [], nowhere, redis.ConnectionString, app.MasterKeys,
            new Dictionary<string, string> { ["Redis__Replicas"] = "1" }, untilHealthy: false);
        try
        {
            for (var i = 0; i < 300 && !node.Log.Contains("MariaDB is not reachable yet"); i++) await Task.Delay(50);
            Assert.Contains("MariaDB is not reachable yet", node.Log);
            // Said once for the wait, not once a try (an outside check counted a line a second).
            await Task.Delay(TimeSpan.FromSeconds(2.5));
            Assert.Single(System.Text.RegularExpressions.Regex.Matches(node.Log, "MariaDB is not reachable yet"));
            // Nothing but the node knows this Redis: the shared connection's two sockets (commands,
            // subscriptions) and the replicated writes' one, besides redis-cli asking.
            var clients = (await RedisCluster.CliAsync(redis.Port, "CLIENT", "LIST")).Split('\n', StringSplitOptions.RemoveEmptyEntries);
            var toRedis = clients.Count(client => !client.Contains("cmd=client|list", StringComparison.Ordinal));
            Assert.True(toRedis == 3, $"{toRedis} connections to Redis while the node waits for MariaDB:\n{string.Join('\n', clients)}\n{node.Log}");
        }
        finally
        {
            await node.KillAsync();
        }
    }

    [Fact]
    public async Task A_node_started_while_Redis_is_down_waits_for_it_and_serves_once_it_is_back()
    {
        // It stopped at once ("Redis did not take the connection", exit 1) and stayed down after
        // Redis came back, unless something restarted it (an outside check).
        await using var redis = await RedisServer.StartAsync();
        await redis.StopAsync();
        var node = await AppProcess.LaunchAsync(app.BinaryPath, [], app.MariaDbConnection, redis.ConnectionString, app.MasterKeys, untilHealthy: false);
        try
        {
            for (var i = 0; i < 400 && !node.Log.Contains("Redis is not reachable yet"); i++) await Task.Delay(50);
            Assert.Contains("Redis is not reachable yet", node.Log);
            await Task.Delay(TimeSpan.FromSeconds(2));
            Assert.DoesNotContain("AMS cannot start", node.Log);
            await redis.StartAgainAsync();
            using var client = new HttpClient { BaseAddress = node.BaseAddress, Timeout = TimeSpan.FromSeconds(5) };
            HttpResponseMessage? health = null;
            for (var i = 0; i < 100 && health?.StatusCode != HttpStatusCode.OK; i++)
            {
                await Task.Delay(100);
                try { health = await client.GetAsync("/healthz"); } catch (HttpRequestException) { }
            }
            Assert.True(health?.StatusCode == HttpStatusCode.OK, node.Log);
            Assert.Contains("Redis answers after", node.Log);
            Assert.Single(System.Text.RegularExpressions.Regex.Matches(node.Log, "Redis is not reachable yet"));
        }
        finally
        {
            await node.KillAsync();
        }
    }

    [Fact]
    public async Task A_node_whose_Redis_hangs_stops_well_within_docker_stops_grace()
    {
        await using var redis = await RedisServer.StartAsync();
        // Two Redis connections to close: the shared one and the replicated writes' own.
        var node = await AppProcess.LaunchAsync(app.BinaryPath, [], app.MariaDbConnection, redis.ConnectionString, app.MasterKeys,
            new Dictionary<string, string> { ["Redis__Replicas"] = "1" });
        redis.Pause();
        try
        {
            var stopping = Stopwatch.StartNew();
            await node.StopAsync();   // SIGTERM, then SIGKILL after 10 s
            Assert.True(stopping.Elapsed < TimeSpan.FromSeconds(4), $"stopping took {stopping.Elapsed.TotalSeconds:F1} s with Redis paused:\n{node.Log}");
        }
        finally
        {
            redis.Resume();
            await node.StopAsync();
        }
    }

    [Fact]
    public async Task Api_document_is_served_from_the_binary_as_committed()
    {
        // The binary cannot generate it: it serves docs/openapi.json as embedded at publish time.
        using var client = app.Client();
        using var response = await client.GetAsync("/openapi.json");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        var committed = await File.ReadAllTextAsync(Path.Combine(AppProcess.RepositoryRoot(), "docs", "openapi.json"));
        Assert.Equal(committed, await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Json_logs_parse_line_by_line_with_trace_ids_and_shutdown_ends_streams_at_once()
    {
        var node = await AppProcess.LaunchAsync(app.BinaryPath, [], app.MariaDbConnection, app.RedisConnection, app.MasterKeys,
            new Dictionary<string, string> { ["Logging__Console__FormatterName"] = "json" });
        try
        {
            var name = $"jl{Guid.NewGuid():N}"[..20];
            using var client = node.Client();
            Assert.Equal(HttpStatusCode.Created, (await client.PostAsJsonAsync("/api/register", new { username = name, password = SmokeUsers.Password })).StatusCode);
            var login = (await (await client.PostAsJsonAsync("/api/login", new { username = name, password = SmokeUsers.Password })).Content.ReadFromJsonAsync<JsonObject>())!;

            // A live stream open while the node is told to stop (SIGTERM, as docker stop does).
            using var streaming = node.Client();
            streaming.Timeout = TimeSpan.FromSeconds(30);
            var request = new HttpRequestMessage(HttpMethod.Get, "/api/events");
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", login["token"]!.GetValue<string>());
            request.Headers.Accept.ParseAdd("text/event-stream");
            using var response = await streaming.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
            var body = await response.Content.ReadAsStreamAsync();
            var first = new byte[64];
            Assert.True(await body.ReadAsync(first) > 0);
            var drained = Task.Run(async () => { try { await body.CopyToAsync(Stream.Null); } catch (IOException) { } catch (HttpRequestException) { } });
            var stopping = Stopwatch.StartNew();
            await node.StopAsync();
            Assert.True(stopping.Elapsed < TimeSpan.FromSeconds(5), $"stopping took {stopping.Elapsed} with a stream open");
            Assert.True(await Task.WhenAny(drained, Task.Delay(5000)) == drained, "the stream did not end");

            var lines = node.Log.Split('\n').Select(l => l.TrimEnd('\r')).Where(l => l.Length > 0).ToList();
            Assert.NotEmpty(lines);
            var parsed = lines.Select(l => JsonDocument.Parse(l).RootElement).ToList();   // every line is one JSON object
            Assert.All(parsed, p => Assert.True(p.TryGetProperty("LogLevel", out _) && p.TryGetProperty("Category", out _)));
            // UTC, to the millisecond, nothing after the Z (a trailing space once).
            Assert.All(parsed, p => Assert.Matches(@"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", p.GetProperty("Timestamp").GetString()!));
            var security = parsed.Single(p => p.GetProperty("Message").GetString()!.StartsWith("Security event login for user", StringComparison.Ordinal));
            var scope = security.GetProperty("Scopes").EnumerateArray().First(s => s.ValueKind == JsonValueKind.Object && s.TryGetProperty("TraceId", out _));
            Assert.Matches("^[0-9a-f]{32}$", scope.GetProperty("TraceId").GetString()!);
            Assert.Matches("^[0-9a-f]{16}$", scope.GetProperty("SpanId").GetString()!);
            Assert.DoesNotContain(SmokeUsers.Password, node.Log);
            Assert.DoesNotContain(login["token"]!.GetValue<string>(), node.Log);
        }
        finally
        {
            await node.DisposeAsync();
        }
    }

    [Fact]
    public async Task Simple_logs_take_the_time_stamp_and_single_line_settings_the_README_names()
    {
        var node = await AppProcess.LaunchAsync(app.BinaryPath, [], app.MariaDbConnection, app.RedisConnection, app.MasterKeys,
            new Dictionary<string, string>
            {
                ["Logging__Console__FormatterOptions__TimestampFormat"] = "yyyy-MM-ddTHH:mm:ss.fffZ ",
                ["Logging__Console__FormatterOptions__UseUtcTimestamp"] = "true",
                ["Logging__Console__FormatterOptions__SingleLine"] = "true",
            });
        try
        {
            using var client = node.Client();
            Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/livez")).StatusCode);
            await node.StopAsync();
            var lines = node.Log.Split('\n').Select(l => l.TrimEnd('\r')).Where(l => l.Length > 0).ToList();
            Assert.Contains(lines, l => l.Contains("Registered", StringComparison.Ordinal) && l.Contains("endpoints", StringComparison.Ordinal));
            // Every entry one line, stamped in UTC to the millisecond.
            Assert.All(lines, l => Assert.Matches(@"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (info|warn|fail|crit|dbug|trce): ", l));
            var stamped = DateTime.Parse(lines[0][..24], System.Globalization.CultureInfo.InvariantCulture, System.Globalization.DateTimeStyles.AdjustToUniversal);
            Assert.True(Math.Abs((DateTime.UtcNow - stamped).TotalMinutes) < 5, lines[0]);
        }
        finally
        {
            await node.DisposeAsync();
        }
    }
}
