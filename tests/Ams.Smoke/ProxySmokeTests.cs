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
