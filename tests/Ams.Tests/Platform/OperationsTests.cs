using System.Net;
using Alba;
using Ams.Infrastructure;
using Ams.Tests.Messaging;
using Ams.Tests.Support;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Ams.Tests.Platform;

/// <summary>/metrics (AMS's own metrics after traffic, only for Metrics:AllowFrom), /livez, /readyz, /api/version, and trusted proxies by CIDR.</summary>
public sealed class OperationsTests(Services services) : IClassFixture<Services>
{
    static async Task<string> MetricsAsync(IAlbaHost app, string from, int status) =>
        await (await app.Scenario(s => { s.Get.Url("/metrics"); s.From(from); s.StatusCodeShouldBe(status); })).ReadAsTextAsync();

    [Fact]
    public async Task A_new_node_serves_its_counters_before_their_first_increment()
    {
        // AMS's meter is the process's: tests running beside this one may have counted into it since (not 0).
        await using var app = await services.StartAppAsync();
        var metrics = await MetricsAsync(app, "127.0.0.1", 200);
        Assert.Matches(@"(?m)^ams_db_conflict_retries_total\{operation=""send""\} \d+$", metrics);
        Assert.Matches(@"(?m)^ams_db_conflict_retries_total\{operation=""request""\} \d+$", metrics);
        Assert.Matches(@"(?m)^ams_messages_sent_total \d+$", metrics);
        Assert.Matches(@"(?m)^ams_events_delivered_total \d+$", metrics);
        Assert.Matches(@"(?m)^ams_passwords_refused_total \d+$", metrics);
    }

    [Fact]
    public async Task Metrics_show_traffic_and_ams_instruments_to_allowed_addresses_only()
    {
        await using var app = await services.StartAppAsync(settings: [new("Metrics:AllowFrom", "127.0.0.0/8, 10.9.0.0/16")]);
        var token = await app.NewUserTokenAsync("mx");
        var other = Api.UniqueName("mx");
        await app.RegisterAsync(other);
        await app.Scenario(s =>
        {
            s.Post.Json(new { to = other, body = "counted" }).ToUrl("/api/messages");
            s.WithRequestHeader("Authorization", $"Bearer {token}");
            s.StatusCodeShouldBe(201);
        });
        await using (var stream = await SseClient.OpenAsync(app, token, lastEventId: "0"))
        {
            Assert.NotNull(await stream.NextAsync());   // the replayed message: the replay is done
            // The stream registers as its response starts; give it a moment on a busy machine.
            var open = false;
            for (var i = 0; i < 50 && !open; i++, await Task.Delay(100))
                open = System.Text.RegularExpressions.Regex.IsMatch(await MetricsAsync(app, "127.0.0.1", 200), @"(?m)^ams_events_streams_open [1-9]");
            Assert.True(open, "no open stream counted");
        }

        var metrics = "";
        for (var i = 0; i < 50 && !metrics.Contains("ams_events_replay_size_count"); i++, await Task.Delay(100))
            metrics = await MetricsAsync(app, "10.9.3.4", 200);
        Assert.Matches(@"(?m)^# TYPE ams_messages_sent_total counter$", metrics);
        Assert.Matches(@"(?m)^ams_messages_sent_total [1-9]", metrics);
        Assert.Matches(@"(?m)^ams_send_batch_size_bucket\{le=""\+Inf""\} [1-9]", metrics);
        Assert.Matches(@"(?m)^ams_events_replay_size_count [1-9]", metrics);
        Assert.Matches(@"(?m)^ams_entropy_mode\{mode=""os""\} 1$", metrics);
        Assert.Matches(@"(?m)^ams_entropy_pool_size_bytes \d+$", metrics);
        Assert.Matches(@"(?m)^# TYPE http_server_request_duration_seconds histogram$", metrics);
        Assert.Matches(@"(?m)^http_server_request_duration_seconds_bucket\{.*http_route=""/api/messages"".*le=""0\.005""\} \d+$", metrics);
        Assert.Matches(@"(?m)^dotnet_gc_", metrics);
        // Every line is a comment or `name{labels} value`; a label's value is quoted and may hold
        // braces (a route's `{id}`: other tests' throttled requests land in this process's meter).
        foreach (var line in metrics.Split('\n', StringSplitOptions.RemoveEmptyEntries))
            Assert.Matches(@"^(# (HELP|TYPE) \S+ .+|[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*=""(\\.|[^""\\])*"",?)*\})? \S+)$", line);

        var refused = await app.Scenario(s => { s.Get.Url("/metrics"); s.From("192.0.2.7"); s.StatusCodeShouldBe(404); });
        await refused.ProblemAsync(404);
    }

    [Fact]
    public async Task Throttled_requests_are_counted()
    {
        await using var app = await services.StartAppAsync(settings: [new("Registration:MaxPerAddress", "1")]);
        for (var i = 0; i < 2; i++)
            await app.Scenario(s =>
            {
                s.Post.Json(new { username = Api.UniqueName("th"), password = Api.Password }).ToUrl("/api/register");
                s.From("198.51.100.77");
                s.StatusCodeShouldBe(i == 0 ? 201 : 429);
            });
        Assert.Matches(@"(?m)^ams_requests_throttled_total\{http_route=""/api/register""\} [1-9]", await MetricsAsync(app, "127.0.0.1", 200));
    }

    [Fact]
    public async Task A_node_that_stops_closes_its_database_connections()
    {
        // Its own database, so that only this node's connections are counted.
        var database = $"{services.Database}_stop";
        var app = await services.StartAppAsync(database);
        var (alice, bob) = (await app.MemberAsync("st"), await app.MemberAsync("st"));
        await app.SendAsync(alice, (await app.DirectAsync(alice, bob)).Id(), "pooled");
        var connections = $"SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE DB = '{database}'";
        Assert.NotEqual("0", await services.ScalarAsync(connections));

        await app.DisposeAsync();
        // Left open, a stopped node's idle pool would hold the server's connections for minutes.
        var left = "";
        for (var i = 0; i < 50 && left != "0"; i++, await Task.Delay(100))
            left = await services.ScalarAsync(connections);
        Assert.Equal("0", left);
    }

    [Fact]
    public async Task Livez_readyz_and_version()
    {
        var app = await services.AppAsync();
        Assert.Equal("ok", (await (await app.Scenario(s => s.Get.Url("/livez"))).JsonAsync())["status"]!.GetValue<string>());
        var ready = await (await app.Scenario(s => s.Get.Url("/readyz"))).JsonAsync();
        Assert.Equal("ok", ready["mariadb"]!.GetValue<string>());
        var version = await (await app.Scenario(s => s.Get.Url("/api/version"))).JsonAsync();
        Assert.Matches(@"^\d+\.\d+\.\d+", version["version"]!.GetValue<string>());
        Assert.Matches("^([0-9a-f]{40}|unknown)$", version["commit"]!.GetValue<string>());
    }

    [Fact]
    public async Task Trusted_proxies_are_taken_by_cidr()
    {
        await using var app = await services.StartAppAsync(settings: [new("Network:TrustedProxies", "10.0.0.0/8, 192.0.2.10")]);
        var name = Api.UniqueName("px");
        await app.RegisterAsync(name);
        async Task<string> SessionAddressAsync(string peer)
        {
            var login = await (await app.Scenario(s =>
            {
                s.Post.Json(new { username = name, password = Api.Password }).ToUrl("/api/login");
                s.From(peer);
                s.WithRequestHeader("X-Forwarded-For", "203.0.113.9");
            })).JsonAsync();
            var sessions = await (await app.Scenario(s =>
            {
                s.Get.Url("/api/sessions");
                s.WithRequestHeader("Authorization", $"Bearer {login["token"]!.GetValue<string>()}");
            })).JsonAsync();
            return sessions.AsArray().Single(x => x!["current"]!.GetValue<bool>())!["address"]!.GetValue<string>();
        }
        Assert.Equal("203.0.113.9", await SessionAddressAsync("10.200.1.2"));
        Assert.Equal("203.0.113.9", await SessionAddressAsync("192.0.2.10"));
        Assert.Equal("192.0.2.11", await SessionAddressAsync("192.0.2.11"));
    }

    [Theory]
    [InlineData("curl/8.5.0", "curl/8.5.0")]
    [InlineData("Mozilla/5.0 \u202Egpj.exe\u202C (X11)", "Mozilla/5.0 gpj.exe (X11)")]
    [InlineData("a\u0007b\u200Fc\u2066d\u00ADe", "abcde")]
    public void A_user_agent_keeps_no_control_or_format_characters(string sent, string kept)
    {
        var http = new Microsoft.AspNetCore.Http.DefaultHttpContext();
        http.Request.Headers.UserAgent = sent;
        Assert.Equal(kept, ClientAddress.UserAgentOf(http));
    }

    [Fact]
    public async Task Forwarding_headers_from_a_peer_not_trusted_are_logged_once()
    {
        const string Warning = "carried X-Forwarded-Proto or X-Forwarded-For, which this node ignores";
        var logs = new CapturedLogs();
        await using (var app = await services.StartAppAsync(services: s => s.AddSingleton<ILoggerProvider>(logs)))
        {
            await app.Scenario(s => { s.Get.Url("/livez"); s.From("192.0.2.7"); });
            Assert.DoesNotContain(logs.Lines, l => l.Contains(Warning));
            for (var i = 0; i < 3; i++)
                await app.Scenario(s => { s.Get.Url("/livez"); s.From("192.0.2.7"); s.WithRequestHeader(i == 1 ? "X-Forwarded-For" : "X-Forwarded-Proto", i == 1 ? "203.0.113.9" : "https"); });
            Assert.Single(logs.Lines, l => l.StartsWith("Warning") && l.Contains(Warning) && l.Contains("192.0.2.7"));
        }

        var trustedLogs = new CapturedLogs();
        await using var trusting = await services.StartAppAsync(settings: [new("Network:TrustedProxies", "10.0.0.0/8")],
            services: s => s.AddSingleton<ILoggerProvider>(trustedLogs));
        await trusting.Scenario(s => { s.Get.Url("/livez"); s.From("10.1.2.3"); s.WithRequestHeader("X-Forwarded-Proto", "https"); });
        Assert.DoesNotContain(trustedLogs.Lines, l => l.Contains(Warning));
        await trusting.Scenario(s => { s.Get.Url("/livez"); s.From("192.0.2.8"); s.WithRequestHeader("X-Forwarded-Proto", "https"); });
        Assert.Single(trustedLogs.Lines, l => l.Contains(Warning) && l.Contains("192.0.2.8"));
    }

    [Theory]
    [InlineData("Presence:Heartbeat", "-00:00:10", "Presence:Heartbeat must be more than 00:00:00 and at most 1.00:00:00, not '-00:00:10'")]
    [InlineData("Presence:Heartbeat", "00:00:00", "Presence:Heartbeat must be more than")]
    [InlineData("Events:KeepAlive", "60.00:00:00", "Events:KeepAlive must be more than 00:00:00 and at most 1.00:00:00")]
    [InlineData("Attachments:SweepInterval", "00:00:00", "Attachments:SweepInterval must be at least 00:00:01")]
    [InlineData("Entropy:TickInterval", "0:0:0", "Entropy:TickInterval must be more than")]
    [InlineData("Events:MaxReplayAge", "-1.00:00:00", "Events:MaxReplayAge must be more than 00:00:00")]
    [InlineData("Sessions:IdleTimeout", "-01:00:00", "Sessions:IdleTimeout must be more than 00:00:00 and at most 36500.00:00:00, not '-01:00:00'")]
    [InlineData("Attachments:UnsentLifetime", "800000.00:00:00", "Attachments:UnsentLifetime must be more than 00:00:00 and at most 36500.00:00:00, not '800000.00:00:00'")]
    [InlineData("Events:MaxReplayAge", "10675199.02:48:05.4775807", "Events:MaxReplayAge must be more than 00:00:00 and at most 36500.00:00:00")]
    [InlineData("Sessions:AbsoluteLifetime", "36500.00:00:01", "Sessions:AbsoluteLifetime must be more than 00:00:00 and at most 36500.00:00:00")]
    [InlineData("Sessions:OutageGrace", "40000.00:00:00", "Sessions:OutageGrace must be at least 00:00:00 and at most 36500.00:00:00")]
    [InlineData("Events:SweepInterval", "00:00:00.0001", "Events:SweepInterval must be at least 00:00:01 and at most 1.00:00:00, not '00:00:00.0001'")]
    [InlineData("Attachments:SweepInterval", "2.00:00:00", "Attachments:SweepInterval must be at least 00:00:01 and at most 1.00:00:00")]
    [InlineData("Login:Window", "-00:15:00", "Login:Window must be more than")]
    [InlineData("Messaging:Window", "00:00:00", "Messaging:Window must be more than")]
    [InlineData("Sessions:OutageGrace", "-00:00:01", "Sessions:OutageGrace must be at least 00:00:00")]
    [InlineData("Login:MaxFailuresPerAccount", "-1", "Login:MaxFailuresPerAccount must be 1 or more, not '-1'.")]
    [InlineData("Messaging:MaxSends", "-5", "Messaging:MaxSends must be 1 or more")]
    [InlineData("Conversations:MaxMembers", "0", "Conversations:MaxMembers must be 1 or more")]
    [InlineData("Events:QueueCapacity", "0", "Events:QueueCapacity must be 1 or more")]
    [InlineData("Entropy:BlobBits", "0", "Entropy:BlobBits must be a multiple of 256 from 256 to 1048576, not '0'.")]
    [InlineData("Entropy:BlobBits", "128", "Entropy:BlobBits must be a multiple of 256")]
    [InlineData("Entropy:BlobBits", "4100", "Entropy:BlobBits must be a multiple of 256")]
    [InlineData("Entropy:BlobBits", "1048832", "Entropy:BlobBits must be a multiple of 256")]
    [InlineData("RandomOrg:Timeout", "60.00:00:00", "RandomOrg:Timeout must be more than 00:00:00 and at most 1.00:00:00")]
    [InlineData("Attachments:QuotaBytes", "0", "Attachments:QuotaBytes must be 1 or more")]
    [InlineData("Entropy:DailyBitBudget", "-1", "Entropy:DailyBitBudget must be 0 or more")]
    [InlineData("Presence:Ttl", "00:00:10", "Presence:Ttl (00:00:10) must be longer than Presence:Heartbeat (00:00:10)")]
    [InlineData("Presence:Heartbeat", "00:01:00", "Presence:Ttl (00:00:35) must be longer than Presence:Heartbeat (00:01:00)")]
    public void A_number_or_duration_out_of_range_is_refused_at_start_with_its_name(string key, string value, string message) =>
        Assert.StartsWith(message, Assert.Throws<ConfigurationException>(() => SettingRanges.Check(Config((key, value)))).Message);

    [Theory]
    [InlineData("Sessions:LocalCache", "00:00:00")]
    [InlineData("Entropy:BlobBits", "256")]
    [InlineData("Entropy:BlobBits", "1048576")]
    [InlineData("Sessions:OutageGrace", "00:00:00")]
    [InlineData("Passwords:QueueTimeoutMs", "0")]
    [InlineData("Entropy:DailyRequestBudget", "0")]
    [InlineData("Presence:Ttl", "00:00:11")]
    [InlineData("Sessions:AbsoluteLifetime", "90.00:00:00")]
    [InlineData("Login:MaxFailuresPerAccount", "1")]
    [InlineData("Login:Window", "12h")]   // no duration at all: the binder's to refuse, with the key
    public void Numbers_and_durations_in_range_pass(string key, string value) => SettingRanges.Check(Config((key, value)));

    [Fact]
    public void Blob_sizes_are_checked_in_the_pools_own_chunks() =>
        Assert.Equal(Ams.Features.Entropy.Pool.ChunkBytes * 8, SettingRanges.BlobBitsStep);

    [Fact]
    public void The_longest_heartbeat_passes_with_a_longer_mark() =>
        SettingRanges.Check(Config(("Presence:Heartbeat", "1.00:00:00"), ("Presence:Ttl", "1.00:00:30")));

    static IConfiguration Config(params (string Key, string Value)[] settings) =>
        new ConfigurationBuilder().AddInMemoryCollection(settings.Select(s => new KeyValuePair<string, string?>(s.Key, s.Value))).Build();

    [Theory]
    [InlineData("10.0.0.0/8,::1", 2)]
    [InlineData(" 192.0.2.1 , fd00::/8 ", 2)]
    [InlineData("", 0)]
    public void Networks_parse_addresses_and_cidrs(string setting, int count) =>
        Assert.Equal(count, ClientAddress.ParseNetworks(setting, "X").Count);

    [Theory]
    [InlineData("10.0.0.0/33")]
    [InlineData("proxy.local")]
    [InlineData("10.0.0.0/8/8")]
    public void Bad_networks_name_the_setting(string setting) =>
        Assert.Contains("Network:TrustedProxies", Assert.Throws<ConfigurationException>(() => ClientAddress.ParseNetworks(setting, "Network:TrustedProxies")).Message);
}
