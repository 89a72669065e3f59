using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using Ams.Testing;

namespace Ams.Smoke;

/// <summary>
/// The README's nginx and Caddy samples (docs/proxy/) in front of the AOT binary: TLS, the proxy's
/// forwarded headers trusted, the event stream unbuffered, an upload past nginx's default 1 MB body
/// limit, and /metrics closed at the proxy.
/// </summary>
public sealed class ProxySmokeTests(AppProcess app) : IClassFixture<AppProcess>
{
    [Theory]
    [InlineData("nginx")]
    [InlineData("caddy")]
    public async Task The_sample_config_serves_the_api_a_live_stream_and_uploads_over_TLS(string server)
    {
        var node = await AppProcess.LaunchAsync(app.BinaryPath, [], app.MariaDbConnection, app.RedisConnection, app.MasterKeys,
            new Dictionary<string, string> { ["Network__TrustedProxies"] = "127.0.0.1/32", ["Registration__MaxPerAddress"] = "10000" });
        try
        {
            var sample = File.ReadAllText(Path.Combine(AppProcess.RepositoryRoot(), "docs", "proxy", server == "nginx" ? "nginx.conf" : "Caddyfile"));
            await using var proxy = server == "nginx"
                ? await ReverseProxy.StartNginxAsync(sample, node.BaseAddress.Port)
                : await ReverseProxy.StartCaddyAsync(sample, node.BaseAddress.Port);
            var (_, alice) = await SmokeUsers.UserAsync(proxy.Client(), "pa");
            var (bobName, bob) = await SmokeUsers.UserAsync(proxy.Client(), "pb");

            // The node saw HTTPS through X-Forwarded-Proto: HSTS is only sent on secure requests.
            using (var me = await alice.GetAsync("/api/me"))
            {
                Assert.Equal(HttpStatusCode.OK, me.StatusCode);
                Assert.True(me.Headers.Contains("Strict-Transport-Security"), $"no HSTS through {server}: the forwarded scheme did not arrive");
            }
            await AssertHttp2Async(alice);

            // A live event arrives at once, not when a proxy buffer fills up.
            using var request = new HttpRequestMessage(HttpMethod.Get, "/api/events");
            request.Headers.Accept.ParseAdd("text/event-stream");
            using var events = await bob.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
            Assert.Equal(HttpStatusCode.OK, events.StatusCode);
            using var reader = new StreamReader(await events.Content.ReadAsStreamAsync());
            var sent = Stopwatch.StartNew();
            Assert.Equal(HttpStatusCode.Created, (await alice.PostAsJsonAsync("/api/messages", new { to = bobName, body = "through the proxy" })).StatusCode);
            using var wait = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            string? line;
            do line = await reader.ReadLineAsync(wait.Token);
            while (line is not null && line != "event: message");
            Assert.Equal("event: message", line);
            Assert.Contains("through the proxy", await reader.ReadLineAsync(wait.Token));
            Assert.True(sent.Elapsed < TimeSpan.FromSeconds(5));

            // 2 MB: over nginx's default client_max_body_size, under the sample's.
            var bytes = new byte[2 * 1024 * 1024];
            Random.Shared.NextBytes(bytes);
            using var form = new MultipartFormDataContent { { new ByteArrayContent(bytes), "file", "big.bin" } };
            using (var upload = await alice.PostAsync("/api/attachments", form))
                Assert.True(upload.StatusCode == HttpStatusCode.Created, $"upload through {server}: {upload.StatusCode} {await upload.Content.ReadAsStringAsync()}");

            Assert.Equal(HttpStatusCode.NotFound, (await alice.GetAsync("/metrics")).StatusCode);
            using var direct = node.Client();
            Assert.Equal(HttpStatusCode.OK, (await direct.GetAsync("/metrics")).StatusCode);
        }
        finally
        {
            await node.StopAsync();
        }
    }

    // Browsers open at most six HTTP/1.1 connections to a host and every chat tab holds one for its
    // event stream: with six tabs open, the next request waited for ever. The samples speak HTTP/2.
    static async Task AssertHttp2Async(HttpClient client)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "/api/me") { Version = HttpVersion.Version20, VersionPolicy = HttpVersionPolicy.RequestVersionExact };
        using var answer = await client.SendAsync(request);
        Assert.Equal((HttpStatusCode.OK, HttpVersion.Version20), (answer.StatusCode, answer.Version));
    }

    [Fact]
    public async Task The_HAProxy_sample_spreads_two_nodes_and_a_stream_resumes_on_the_other_when_one_stops()
    {
        var (nodes, proxy) = await BehindHaproxyAsync(app.RedisConnection);
        try
        {
            var (_, alice) = await SmokeUsers.UserAsync(proxy.Client(), "ha");
            var (bobName, bob) = await SmokeUsers.UserAsync(proxy.Client(), "hb");
            using (var me = await alice.GetAsync("/api/me"))
                Assert.True(me.Headers.Contains("Strict-Transport-Security"), "the forwarded scheme did not arrive");
            await AssertHttp2Async(alice);
            Assert.Equal(HttpStatusCode.NotFound, (await alice.GetAsync("/metrics")).StatusCode);

            var stream = new EventReader(bob);
            await stream.OpenAsync(null);
            for (var i = 0; i < 4; i++)
                Assert.Equal(HttpStatusCode.Created, (await alice.PostAsJsonAsync("/api/messages", new { to = bobName, body = $"before {i}" })).StatusCode);
            for (var i = 0; i < 4; i++) Assert.Contains($"before {i}", await stream.NextMessageAsync());
            // Round robin: both nodes took sends.
            foreach (var node in nodes)
            {
                using var direct = node.Client();
                Assert.Matches(@"(?m)^ams_messages_sent_total [1-9]", await direct.GetStringAsync("/metrics"));
            }

            // One node stops (a deploy, a crash): sends go on through the other, and the stream
            // resumes after the last event it saw, missing nothing.
            await nodes[0].StopAsync();
            for (var i = 0; i < 3; i++)
                Assert.Equal(HttpStatusCode.Created, (await alice.PostAsJsonAsync("/api/messages", new { to = bobName, body = $"after {i}" })).StatusCode);
            await stream.OpenAsync(stream.LastEventId);
            var seen = new List<string>();
            for (var i = 0; i < 3; i++) seen.Add(await stream.NextMessageAsync());
            for (var i = 0; i < 3; i++) Assert.Contains($"after {i}", seen[i]);
            Assert.DoesNotContain(seen, data => data.Contains("before"));
            stream.Dispose();
        }
        finally
        {
            await proxy.DisposeAsync();
            foreach (var node in nodes) await node.StopAsync();
        }
    }

    [Fact]
    public async Task Behind_the_HAProxy_sample_a_Redis_outage_delays_live_delivery_never_the_send()
    {
        // Every node's /readyz answers 503 while Redis is out, so HAProxy marks them all down:
        // the sample must still send requests to the nodes that live, which store the sends.
        await using var redis = await RedisServer.StartAsync();
        var (nodes, proxy) = await BehindHaproxyAsync(redis.ConnectionString);
        try
        {
            var (_, alice) = await SmokeUsers.UserAsync(proxy.Client(), "hra");
            var (bobName, bob) = await SmokeUsers.UserAsync(proxy.Client(), "hrb");
            // Both nodes have seen both sessions (they keep them through an outage, Sessions__OutageGrace).
            for (var i = 0; i < 4; i++)
            {
                Assert.Equal(HttpStatusCode.OK, (await alice.GetAsync("/api/me")).StatusCode);
                Assert.Equal(HttpStatusCode.OK, (await bob.GetAsync("/api/me")).StatusCode);
            }
            var stream = new EventReader(bob);
            await stream.OpenAsync(null);
            Assert.Equal(HttpStatusCode.Created, (await alice.PostAsJsonAsync("/api/messages", new { to = bobName, body = "before" })).StatusCode);
            Assert.Contains("before", await stream.NextMessageAsync());

            redis.Pause();   // hung, not gone: the sessions are still there when it answers again
            using (var direct = nodes[0].Client())
            {
                while ((await direct.GetAsync("/readyz")).StatusCode != HttpStatusCode.ServiceUnavailable) await Task.Delay(200);
            }
            await Task.Delay(TimeSpan.FromSeconds(7));   // well past the sample's fall 2 at inter 1s: both nodes are down for HAProxy
            var statuses = new List<HttpStatusCode>();
            for (var i = 0; i < 4; i++)
                statuses.Add((await alice.PostAsJsonAsync("/api/messages", new { to = bobName, body = $"during {i}" })).StatusCode);
            Assert.All(statuses, status => Assert.Equal(HttpStatusCode.Created, status));

            redis.Resume();
            // The stream on its node, or a new one resumed after the last event it saw, gets them all, once.
            var seen = new List<string>();
            try
            {
                for (var i = 0; i < 4; i++) seen.Add(await stream.NextMessageAsync());
            }
            catch (Exception e) when (e is InvalidOperationException or OperationCanceledException or IOException or HttpRequestException)
            {
                await stream.OpenAsync(stream.LastEventId);
                while (seen.Count < 4) seen.Add(await stream.NextMessageAsync());
            }
            for (var i = 0; i < 4; i++) Assert.Contains($"during {i}", seen[i]);
            stream.Dispose();
        }
        finally
        {
            await proxy.DisposeAsync();
            foreach (var node in nodes) await node.StopAsync();
        }
    }

    [Fact]
    public async Task Behind_the_HAProxy_sample_a_paused_node_holds_a_request_seconds_not_a_minute_and_is_soon_passed_over()
    {
        var (nodes, proxy) = await BehindHaproxyAsync(app.RedisConnection);
        try
        {
            var (bobName, bob) = await SmokeUsers.UserAsync(proxy.Client(), "hpb");
            var (_, alice) = await SmokeUsers.UserAsync(proxy.Client(), "hpa");
            await nodes[0].PauseAsync();
            var paused = Stopwatch.StartNew();
            // A request every 200 ms for 6 s. Round robin sends every other one to the paused node
            // until the health checks (inter 1s, fall 2, timeout check 1s) pass it over; those wait
            // for the API's server timeout (15 s), not the event streams' (60 s, the sample's old
            // value for every request).
            var requests = new List<Task<(double StartedAt, double Took, HttpStatusCode Status)>>();
            while (paused.Elapsed < TimeSpan.FromSeconds(6))
            {
                requests.Add(TimedAsync(paused.Elapsed.TotalSeconds, () => alice.GetAsync("/api/me")));
                await Task.Delay(200);
            }
            var answered = await Task.WhenAll(requests);
            var report = string.Join("\n", answered.Select(a => $"+{a.StartedAt:F1} s: {(int)a.Status} in {a.Took:F2} s"));
            Assert.All(answered, a => Assert.True(a.Status is HttpStatusCode.OK or HttpStatusCode.GatewayTimeout && a.Took < 17, report));
            Assert.All(answered.Where(a => a.StartedAt >= 4), a => Assert.True(a.Status == HttpStatusCode.OK && a.Took < 2, report));
            // Nothing was lost on the way: a send and a stream through the proxy work as before.
            var stream = new EventReader(bob);
            await stream.OpenAsync(null);
            Assert.Equal(HttpStatusCode.Created, (await alice.PostAsJsonAsync("/api/messages", new { to = bobName, body = "while paused" })).StatusCode);
            Assert.Contains("while paused", await stream.NextMessageAsync());
            stream.Dispose();
        }
        finally
        {
            await nodes[0].ResumeAsync();
            await proxy.DisposeAsync();
            foreach (var node in nodes) await node.StopAsync();
        }

        static async Task<(double, double, HttpStatusCode)> TimedAsync(double startedAt, Func<Task<HttpResponseMessage>> request)
        {
            var took = Stopwatch.StartNew();
            using var response = await request();
            return (startedAt, took.Elapsed.TotalSeconds, response.StatusCode);
        }
    }

    [Fact]
    public async Task Behind_the_HAProxy_sample_a_quiet_event_stream_outlasts_the_api_server_timeout()
    {
        // No keep-alive for a minute: only the streams' own 60 s server timeout keeps it open.
        var (nodes, proxy) = await BehindHaproxyAsync(app.RedisConnection, keepAlive: "00:01:00");
        try
        {
            var (_, alice) = await SmokeUsers.UserAsync(proxy.Client(), "hqa");
            var (bobName, bob) = await SmokeUsers.UserAsync(proxy.Client(), "hqb");
            var stream = new EventReader(bob);
            await stream.OpenAsync(null);
            await Task.Delay(TimeSpan.FromSeconds(20));   // past the API's 15 s
            Assert.Equal(HttpStatusCode.Created, (await alice.PostAsJsonAsync("/api/messages", new { to = bobName, body = "after a quiet while" })).StatusCode);
            Assert.Contains("after a quiet while", await stream.NextMessageAsync());
            stream.Dispose();
        }
        finally
        {
            await proxy.DisposeAsync();
            foreach (var node in nodes) await node.StopAsync();
        }
    }

    [Fact]
    public async Task Behind_the_HAProxy_sample_a_stream_whose_client_left_ends_on_its_node_at_once()
    {
        var (nodes, proxy) = await BehindHaproxyAsync(app.RedisConnection);
        try
        {
            var (_, bob) = await SmokeUsers.UserAsync(proxy.Client(), "hla");
            var streams = new List<EventReader>();
            for (var i = 0; i < 4; i++)
            {
                var stream = new EventReader(bob);
                await stream.OpenAsync(null);
                streams.Add(stream);
            }
            Assert.Equal(4, await SmokeMetrics.StreamsLeftOpenAsync(TimeSpan.Zero, nodes));
            foreach (var stream in streams) stream.Dispose();
            // Each counts toward the user's 16 streams while it stays open: an outside check saw
            // them stay for 15-55 s (until a keep-alive write failed), and a user reloading tabs
            // met the 429 meanwhile.
            Assert.Equal(0, await SmokeMetrics.StreamsLeftOpenAsync(TimeSpan.FromSeconds(6), nodes));
        }
        finally
        {
            await proxy.DisposeAsync();
            foreach (var node in nodes) await node.StopAsync();
        }
    }

    /// <summary>Two AOT nodes behind the HAProxy sample, with only its addresses, ports, certificate and maxconn changed.</summary>
    async Task<(AppProcess[] Nodes, ReverseProxy Proxy)> BehindHaproxyAsync(string redisConnection, string? keepAlive = null)
    {
        var settings = new Dictionary<string, string> { ["Network__TrustedProxies"] = "127.0.0.1/32", ["Registration__MaxPerAddress"] = "10000" };
        if (keepAlive is not null) settings["Events__KeepAlive"] = keepAlive;
        var nodes = new[]
        {
            await AppProcess.LaunchAsync(app.BinaryPath, [], app.MariaDbConnection, redisConnection, app.MasterKeys, settings),
            await AppProcess.LaunchAsync(app.BinaryPath, [], app.MariaDbConnection, redisConnection, app.MasterKeys, settings),
        };
        try
        {
            var sample = File.ReadAllText(Path.Combine(AppProcess.RepositoryRoot(), "docs", "proxy", "haproxy.cfg"));
            return (nodes, await ReverseProxy.StartHaproxyAsync(sample, nodes.Select(n => n.BaseAddress.Port).ToList()));
        }
        catch
        {
            foreach (var node in nodes) await node.StopAsync();
            throw;
        }
    }

    /// <summary>An SSE client that remembers the last event id, to resume as EventSource does.</summary>
    sealed class EventReader(HttpClient client) : IDisposable
    {
        HttpResponseMessage? response;
        StreamReader? reader;
        public string? LastEventId { get; private set; }

        public async Task OpenAsync(string? lastEventId)
        {
            Dispose();
            var request = new HttpRequestMessage(HttpMethod.Get, "/api/events");
            request.Headers.Accept.ParseAdd("text/event-stream");
            if (lastEventId is not null) request.Headers.Add("Last-Event-ID", lastEventId);
            response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        }

        /// <summary>The data of the next <c>message</c> event, within 10 s.</summary>
        public async Task<string> NextMessageAsync()
        {
            using var wait = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            string? kind = null, id = null;
            while (await reader!.ReadLineAsync(wait.Token) is { } line)
            {
                if (line.StartsWith("id: ")) id = line[4..];
                else if (line.StartsWith("event: ")) kind = line[7..];
                else if (line.StartsWith("data: ") && kind == "message")
                {
                    LastEventId = id ?? LastEventId;
                    return line[6..];
                }
                else if (line.Length == 0) { LastEventId = id ?? LastEventId; kind = null; id = null; }
            }
            throw new InvalidOperationException("the stream ended");
        }

        public void Dispose()
        {
            reader?.Dispose();
            response?.Dispose();
        }
    }

    [Fact]
    public void The_README_shows_the_tested_samples_unchanged()
    {
        var readme = File.ReadAllText(Path.Combine(AppProcess.RepositoryRoot(), "README.md"));
        foreach (var (fence, file) in new[] { ("nginx", "nginx.conf"), ("caddy", "Caddyfile") })
        {
            var sample = File.ReadAllText(Path.Combine(AppProcess.RepositoryRoot(), "docs", "proxy", file)).ReplaceLineEndings("\n");
            Assert.Contains($"```{fence}\n{sample}```", readme.ReplaceLineEndings("\n"));
        }
    }
}
