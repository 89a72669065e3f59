using Ams.Infrastructure;
using Ams.Features.Entropy;
using Ams.Infrastructure.Crypto;
using Ams.Testing;
using Ams.Tests.Support;
using Services = Ams.Tests.Support.Services;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;
using MySqlConnector;

namespace Ams.Tests.Entropy;

/// <summary>
/// random.org (a fake on loopback) → Redis pool → each node's mixer → data keys. Each test has
/// its own Redis so that pool, quota and back-off state do not leak between tests.
/// </summary>
public sealed class EntropyTests(Services services) : IClassFixture<Services>, IAsyncLifetime
{
    FakeRandomOrg randomOrg = null!;
    RedisServer redis = null!;
    readonly FakeTimeProvider clock = new(new DateTimeOffset(2026, 11, 25, 8, 0, 0, TimeSpan.Zero));
    readonly CapturedLogs logs = new();

    public async Task InitializeAsync()
    {
        randomOrg = await FakeRandomOrg.StartAsync();
        redis = await RedisServer.StartAsync();
    }

    public async Task DisposeAsync()
    {
        await randomOrg.DisposeAsync();
        await redis.DisposeAsync();
    }

    Task<IAlbaHost> NodeAsync(string apiKey = FakeRandomOrg.ValidKey, Dictionary<string, string?>? extra = null)
    {
        var settings = new Dictionary<string, string?>
        {
            ["RandomOrg:ApiKey"] = apiKey,
            ["RandomOrg:Endpoint"] = randomOrg.Endpoint.ToString(),
            ["RandomOrg:Timeout"] = "00:00:01",
        };
        foreach (var (k, v) in extra ?? []) settings[k] = v;
        return services.StartAppAsync(settings: settings, redis: redis.ConnectionString, services: s =>
        {
            s.AddSingleton<TimeProvider>(clock);
            s.AddSingleton<ILoggerProvider>(logs);
        });
    }

    [Fact]
    public async Task A_Redis_outage_costs_the_entropy_ticks_one_line_when_it_starts_and_one_when_it_ends()
    {
        await using var own = await RedisServer.StartAsync();
        var captured = new CapturedLogs();
        await using var app = await services.StartAppAsync(redis: own.ConnectionString,
            settings: [new("Entropy:Background", "true"), new("Entropy:TickInterval", "00:00:00.100")],
            services: s => s.AddSingleton<ILoggerProvider>(captured));
        await own.StopAsync();
        const string Skipped = "Entropy ticks skipped while Redis does not answer", Resumed = "Entropy ticks go on: Redis answers again";
        await Eventually.TrueAsync(() => captured.Lines.Any(l => l.Contains(Skipped, StringComparison.Ordinal)), TimeSpan.FromSeconds(20));
        // Every tick meanwhile fails (the pool cannot be read: no reseed ever succeeds here).
        await Task.Delay(TimeSpan.FromSeconds(2));
        await own.StartAgainAsync();
        await Eventually.TrueAsync(() => captured.Lines.Any(l => l.Contains(Resumed, StringComparison.Ordinal)), TimeSpan.FromSeconds(30));
        var started = Assert.Single(captured.Lines, l => l.Contains(Skipped, StringComparison.Ordinal));
        Assert.True(started.Length < 300, started);   // the exception's kind, not the client's state dump
        var resumed = Assert.Single(captured.Lines, l => l.Contains(Resumed, StringComparison.Ordinal));
        var count = int.Parse(System.Text.RegularExpressions.Regex.Match(resumed, @"\((\d+) skipped\)").Groups[1].Value);
        Assert.True(count >= 2, resumed);
    }

    static async Task<JsonNode> StatusAsync(IAlbaHost app)
    {
        var token = await app.NewUserTokenAsync("ent");
        var result = await app.Scenario(s => { s.Get.Url("/api/entropy"); s.WithBearerToken(token); s.StatusCodeShouldBe(200); });
        return await result.JsonAsync();
    }

    /// <summary>The chat's panel, as the page loads it (htmx).</summary>
    static async Task<string> PanelAsync(IAlbaHost app)
    {
        var token = await app.NewUserTokenAsync("enp");
        var result = await app.Scenario(s => { s.Get.Url("/entropy/panel"); s.WithBearerToken(token); s.StatusCodeShouldBe(200); });
        return await result.ReadAsTextAsync();
    }

    // A genuine random blob fails the health tests about once in 4,000 (alpha = 2^-20 per sample);
    // the refiller then simply fetches again, and so do these tests.
    static async Task<Refiller.Outcome> RefillAsync(IAlbaHost app)
    {
        var refiller = app.Services.GetRequiredService<Refiller>();
        var outcome = await refiller.RefillOnceAsync(default);
        return outcome == Refiller.Outcome.Rejected ? await refiller.RefillOnceAsync(default) : outcome;
    }

    async Task<string> MintedEntropyAsync(IAlbaHost app)
    {
        var db = app.Services.GetRequiredService<MariaDb>();
        await using var connection = await db.OpenConnectionAsync();
        return (await app.Services.GetRequiredService<Envelope>().SealStringAsync("x", "entropy-test", ["row"], connection)).Entropy;
    }

    [Fact]
    public async Task Without_a_key_AMS_runs_on_OS_randomness_and_says_so()
    {
        await using var app = await services.StartAppAsync(redis: redis.ConnectionString);
        Assert.Equal(Refiller.Outcome.NotConfigured, await app.Services.GetRequiredService<Refiller>().RefillOnceAsync(default));
        var status = await StatusAsync(app);
        Assert.Equal("os", status["mode"]!.GetValue<string>());
        Assert.False(status["randomOrg"]!["configured"]!.GetValue<bool>());
        Assert.Contains("no API key", status["randomOrg"]!["lastError"]!.GetValue<string>());
        Assert.Null(status["randomOrg"]!["nextRequestAt"]);
        Assert.Equal(0, status["poolBytes"]!.GetValue<long>());
        Assert.Equal("os", await MintedEntropyAsync(app));
        Assert.Equal(0, randomOrg.GenerateBlobsCalls);
    }

    [Fact]
    public async Task Atmospheric_bytes_reach_key_material_and_the_status_shows_it()
    {
        await using var app = await NodeAsync();
        Assert.Equal("os", await MintedEntropyAsync(app));
        Assert.Equal(Refiller.Outcome.Refilled, await RefillAsync(app));
        Assert.Equal(4096, randomOrg.BitsServed % 4096 == 0 ? 4096 : -1);
        Assert.True(await app.Services.GetRequiredService<Refiller>().ReseedOnceAsync());
        Assert.Equal("random.org+os", await MintedEntropyAsync(app));

        var status = await StatusAsync(app);
        Assert.Equal("random.org+os", status["mode"]!.GetValue<string>());
        Assert.Equal(512 - 32, status["poolBytes"]!.GetValue<long>());
        Assert.True(status["randomOrg"]!["configured"]!.GetValue<bool>());
        Assert.Equal(randomOrg.BitsLeft, status["randomOrg"]!["bitsLeft"]!.GetValue<long>());
        Assert.Equal(randomOrg.RequestsLeft, status["randomOrg"]!["requestsLeft"]!.GetValue<long>());
        Assert.Null(status["randomOrg"]!["lastError"]);
        Assert.Equal("2026-11-25T08:00:00.000Z", status["lastRefillAt"]!.GetValue<string>());
        Assert.True(status["keysMinted"]!["withAtmospheric"]!.GetValue<long>() >= 1);
        Assert.True(status["keysMinted"]!["osOnly"]!.GetValue<long>() >= 1);
        Assert.False(string.IsNullOrEmpty(status["mixing"]!.GetValue<string>()));
        Assert.Contains("carry atmospheric noise", await PanelAsync(app));

        // Without a fresh reseed the node falls back to saying "os".
        clock.Advance(TimeSpan.FromMinutes(11));
        Assert.Equal("os", (await StatusAsync(app))["mode"]!.GetValue<string>());
        Assert.Contains("atmospheric noise is not flowing", await PanelAsync(app));
    }

    [Fact]
    public async Task Each_pooled_chunk_reaches_exactly_one_mixer_across_two_nodes()
    {
        await using var node1 = await NodeAsync();
        await using var node2 = await NodeAsync();
        Assert.Equal(Refiller.Outcome.Refilled, await RefillAsync(node1));
        var served = randomOrg.Served.Last();
        var pools = new[] { node1, node2 }.Select(n => n.Services.GetRequiredService<Pool>()).ToArray();
        var taken = await Task.WhenAll(Enumerable.Range(0, 40).Select(i => pools[i % 2].TakeAsync()));
        var chunks = taken.Where(c => c is not null).Select(c => Convert.ToHexString(c!)).ToList();
        Assert.Equal(served.Length / 32, chunks.Count);
        Assert.Equal(chunks.Count, chunks.Distinct().Count());
        Assert.Equal(served.Chunk(32).Select(Convert.ToHexString).Order(), chunks.Order());
    }

    [Fact]
    public async Task Only_one_request_at_a_time_across_the_cluster()
    {
        await using var node1 = await NodeAsync();
        await using var node2 = await NodeAsync();
        randomOrg.Delay = TimeSpan.FromMilliseconds(400);
        var outcomes = await Task.WhenAll(
            node1.Services.GetRequiredService<Refiller>().RefillOnceAsync(default),
            node2.Services.GetRequiredService<Refiller>().RefillOnceAsync(default));
        Assert.Contains(Refiller.Outcome.Busy, outcomes);
        Assert.Equal(1, randomOrg.MaxConcurrentRequests);
        Assert.Equal(1, randomOrg.GenerateBlobsCalls);
    }

    [Fact]
    public async Task The_advisory_delay_is_obeyed()
    {
        await using var app = await NodeAsync(extra: new() { ["Entropy:PoolLowWaterBytes"] = "100000" });
        randomOrg.AdvisoryDelayMs = 5_000;
        Assert.Equal(Refiller.Outcome.Refilled, await RefillAsync(app));
        var calls = randomOrg.GenerateBlobsCalls;
        clock.Advance(TimeSpan.FromSeconds(4));
        Assert.Equal(Refiller.Outcome.Waiting, await app.Services.GetRequiredService<Refiller>().RefillOnceAsync(default));
        Assert.Equal(calls, randomOrg.GenerateBlobsCalls);
        clock.Advance(TimeSpan.FromSeconds(2));
        Assert.Equal(Refiller.Outcome.Refilled, await RefillAsync(app));
    }

    [Fact]
    public async Task The_status_says_when_the_next_request_may_go_out_and_the_refiller_keeps_to_it()
    {
        clock.SetUtcNow(new DateTimeOffset(2026, 11, 26, 12, 0, 0, TimeSpan.Zero));
        await using var app = await NodeAsync(extra: new() { ["Entropy:PoolLowWaterBytes"] = "100000" });
        var refiller = app.Services.GetRequiredService<Refiller>();
        static DateTime? NextRequestAt(JsonNode status) => status["randomOrg"]!["nextRequestAt"]?.GetValue<DateTime>().ToUniversalTime();
        static bool Paced(JsonNode status) => status["randomOrg"]!["paced"]!.GetValue<bool>();

        // Nothing asked yet, and the pool below its low water: due now.
        var status = await StatusAsync(app);
        Assert.Equal(clock.GetUtcNow().UtcDateTime, NextRequestAt(status));
        Assert.False(Paced(status));

        // After an answer with an advisory delay: not before it ends (by noon the day's share is
        // far from spent).
        randomOrg.AdvisoryDelayMs = 5_000;
        Assert.Equal(Refiller.Outcome.Refilled, await RefillAsync(app));
        status = await StatusAsync(app);
        Assert.Equal(clock.GetUtcNow().UtcDateTime.AddSeconds(5), NextRequestAt(status));
        Assert.False(Paced(status));
        clock.Advance(TimeSpan.FromSeconds(4));
        Assert.Equal(Refiller.Outcome.Waiting, await refiller.RefillOnceAsync(default));

        // At 00:00 UTC the first hour's share (8,000 bits) holds one 4,096-bit blob: the second
        // waits until the share has grown enough, long after the advisory delay.
        clock.SetUtcNow(new DateTimeOffset(2026, 11, 27, 0, 0, 0, TimeSpan.Zero));
        Assert.Equal(Refiller.Outcome.Refilled, await RefillAsync(app));
        clock.Advance(TimeSpan.FromSeconds(6));
        status = await StatusAsync(app);
        Assert.True(Paced(status));
        var next = NextRequestAt(status)!.Value;
        Assert.Equal(Pacing.EarliestFetch(clock.GetUtcNow(), new EntropyOptions(), 4096, 1)!.Value.UtcDateTime, next);
        Assert.InRange(next - clock.GetUtcNow().UtcDateTime, TimeSpan.FromSeconds(60), TimeSpan.FromSeconds(120));
        clock.SetUtcNow(next.AddMilliseconds(-1));
        Assert.Equal(Refiller.Outcome.Paced, await refiller.RefillOnceAsync(default));
        clock.SetUtcNow(next);
        Assert.Equal(Refiller.Outcome.Refilled, await RefillAsync(app));
    }

    [Fact]
    public async Task A_stocked_pool_asks_for_nothing_and_the_status_names_no_time()
    {
        await using var app = await NodeAsync();
        Assert.Equal(Refiller.Outcome.Refilled, await RefillAsync(app));
        Assert.Equal(Refiller.Outcome.PoolStocked, await app.Services.GetRequiredService<Refiller>().RefillOnceAsync(default));
        var status = await StatusAsync(app);
        Assert.Null(status["randomOrg"]!["nextRequestAt"]);
        Assert.False(status["randomOrg"]!["paced"]!.GetValue<bool>());
    }

    [Fact]
    public async Task An_outage_degrades_to_OS_mode_and_recovery_brings_atmospheric_mode_back()
    {
        await using var app = await NodeAsync();
        var refiller = app.Services.GetRequiredService<Refiller>();
        randomOrg.Hang = true;
        Assert.Equal(Refiller.Outcome.Failed, await refiller.RefillOnceAsync(default));
        var status = await StatusAsync(app);
        Assert.Equal("os", status["mode"]!.GetValue<string>());
        Assert.Contains("timed out", status["randomOrg"]!["lastError"]!.GetValue<string>());
        Assert.Equal("os", await MintedEntropyAsync(app));

        randomOrg.Hang = false;
        Assert.Equal(Refiller.Outcome.Waiting, await refiller.RefillOnceAsync(default));   // backing off
        clock.Advance(TimeSpan.FromSeconds(31));
        Assert.Equal(Refiller.Outcome.Refilled, await RefillAsync(app));
        Assert.True(await refiller.ReseedOnceAsync());
        status = await StatusAsync(app);
        Assert.Equal("random.org+os", status["mode"]!.GetValue<string>());
        Assert.Null(status["randomOrg"]!["lastError"]);
    }

    [Theory]
    [InlineData(402)]
    [InlineData(403)]
    public async Task An_exhausted_quota_backs_off_until_midnight_UTC(int code)
    {
        await using var app = await NodeAsync();
        var refiller = app.Services.GetRequiredService<Refiller>();
        randomOrg.ErrorCode = code;
        Assert.Equal(Refiller.Outcome.Failed, await refiller.RefillOnceAsync(default));
        Assert.Contains($"error {code}", (await StatusAsync(app))["randomOrg"]!["lastError"]!.GetValue<string>());
        randomOrg.ErrorCode = null;
        var calls = randomOrg.GenerateBlobsCalls;
        clock.Advance(TimeSpan.FromHours(15));            // 23:00 UTC
        Assert.Equal(Refiller.Outcome.Waiting, await refiller.RefillOnceAsync(default));
        Assert.Equal(calls, randomOrg.GenerateBlobsCalls);
        clock.Advance(TimeSpan.FromHours(1.01));          // just past 00:00 UTC
        Assert.Equal(Refiller.Outcome.Refilled, await RefillAsync(app));
    }

    [Theory]
    [InlineData(401)]
    [InlineData(404)]
    [InlineData(405)]
    public async Task Key_errors_are_reported_as_configuration_errors_without_the_key(int code)
    {
        const string secretKey = "sk-live-7f3a9c1e5b2d4f60a8e7c3b1d9f5a2e4";
        await using var app = await NodeAsync(code == 401 ? FakeRandomOrg.ValidKey : secretKey);
        if (code != 401) randomOrg.ErrorCode = code;
        else randomOrg.ErrorCode = 401;
        Assert.Equal(Refiller.Outcome.Failed, await app.Services.GetRequiredService<Refiller>().RefillOnceAsync(default));
        var status = await StatusAsync(app);
        var error = status["randomOrg"]!["lastError"]!.GetValue<string>();
        Assert.Contains("API key rejected", error);
        Assert.Contains("RandomOrg__ApiKey", error);
        Assert.Equal("os", status["mode"]!.GetValue<string>());
        Assert.Contains(logs.Lines, l => l.StartsWith("Error") && l.Contains("API key rejected"));
        Assert.DoesNotContain(secretKey, logs.All);
        Assert.DoesNotContain(FakeRandomOrg.ValidKey, logs.All);
        Assert.DoesNotContain(secretKey, status.ToJsonString());
    }

    [Fact]
    public async Task An_unknown_key_is_a_configuration_error_too()
    {
        const string secretKey = "not-a-key-4b1d9e7a2c";
        await using var app = await NodeAsync(secretKey);
        Assert.Equal(Refiller.Outcome.Failed, await app.Services.GetRequiredService<Refiller>().RefillOnceAsync(default));
        Assert.Contains("error 400", (await StatusAsync(app))["randomOrg"]!["lastError"]!.GetValue<string>());
        Assert.DoesNotContain(secretKey, logs.All);
    }

    const string Usage = "\"bitsLeft\":249000,\"requestsLeft\":999";

    [Theory]
    [InlineData("{\"jsonrpc\":\"2.0\",\"result\":{\"random\":{\"data\":[]}," + Usage + "},\"id\":1}", "could not be read: result.random.data is not one blob")]
    [InlineData("{\"jsonrpc\":\"2.0\",\"result\":{\"random\":{\"data\":[null]}," + Usage + "},\"id\":1}", "could not be read: result.random.data is not one blob")]
    [InlineData("{\"jsonrpc\":\"2.0\",\"result\":{\"random\":{\"data\":[\"%%%\"]}," + Usage + "},\"id\":1}", "could not be read: the blob is not base64")]
    [InlineData("{\"jsonrpc\":\"2.0\",\"result\":{\"random\":{\"data\":\"AAAA\"}," + Usage + "},\"id\":1}", "could not be read: no data")]
    [InlineData("{\"jsonrpc\":\"2.0\",\"id\":1}", "could not be read: no result")]
    [InlineData("[1,2,3]", "could not be read: no result")]
    [InlineData("<html>busy</html>", "could not be read: not JSON")]
    [InlineData("{\"jsonrpc\":\"2.0\",\"error\":\"down\",\"id\":1}", "random.org error 0: no message")]
    [InlineData("{\"jsonrpc\":\"2.0\",\"error\":{\"code\":\"401\",\"message\":\"a code in quotes\"},\"id\":1}", "random.org error 0: a code in quotes")]
    [InlineData("{\"jsonrpc\":\"2.0\",\"error\":{\"code\":503,\"message\":\"key test-key-0123456789 is\\nbusy\"},\"id\":1}", "random.org error 503: key [API key] is busy")]
    public async Task An_answer_that_is_not_a_blob_is_one_failure_with_back_off_and_the_node_serves_on(string reply, string said)
    {
        await using var app = await NodeAsync();
        var refiller = app.Services.GetRequiredService<Refiller>();
        randomOrg.Reply = System.Text.Encoding.UTF8.GetBytes(reply);
        Assert.Equal(Refiller.Outcome.Failed, await refiller.RefillOnceAsync(default));
        var error = (await StatusAsync(app))["randomOrg"]!["lastError"]!.GetValue<string>();
        Assert.Contains(said, error);
        Assert.DoesNotContain("unreachable", error);   // it answered
        Assert.Equal(Refiller.Outcome.Waiting, await refiller.RefillOnceAsync(default));
        Assert.Single(logs.Lines, l => l.Contains("Entropy refill failed") && l.Contains(said));
        Assert.DoesNotContain(FakeRandomOrg.ValidKey, logs.All);
        await app.NewUserTokenAsync("srv");   // sign-ups (keys, salts) go on with the OS's randomness
    }

    [Fact]
    public async Task An_answer_cut_short_is_one_failure_with_back_off_like_no_answer()
    {
        await using var app = await NodeAsync();
        var refiller = app.Services.GetRequiredService<Refiller>();
        randomOrg.CutShort = true;
        Assert.Equal(Refiller.Outcome.Failed, await refiller.RefillOnceAsync(default));
        Assert.Contains("random.org unreachable", (await StatusAsync(app))["randomOrg"]!["lastError"]!.GetValue<string>());
        Assert.Equal(Refiller.Outcome.Waiting, await refiller.RefillOnceAsync(default));
        Assert.Single(logs.Lines, l => l.Contains("Entropy refill failed"));
    }

    [Fact]
    public async Task A_quota_the_answer_reports_spent_is_not_asked_again_before_midnight_UTC()
    {
        await using var app = await NodeAsync(extra: new() { ["Entropy:PoolLowWaterBytes"] = "100000" });
        var refiller = app.Services.GetRequiredService<Refiller>();
        randomOrg.RequestsLeft = 1;
        Assert.Equal(Refiller.Outcome.Refilled, await RefillAsync(app));   // the answer says 0 requests left
        var calls = randomOrg.GenerateBlobsCalls;
        clock.Advance(TimeSpan.FromHours(15));   // 23:00 UTC
        Assert.Equal(Refiller.Outcome.Waiting, await refiller.RefillOnceAsync(default));
        Assert.Equal(calls, randomOrg.GenerateBlobsCalls);
        randomOrg.RequestsLeft = 1000;   // the new day's quota
        clock.Advance(TimeSpan.FromHours(1.01));
        Assert.Equal(Refiller.Outcome.Refilled, await RefillAsync(app));
    }

    [Fact]
    public async Task An_answer_over_a_mebibyte_is_refused_before_it_is_held()
    {
        await using var app = await NodeAsync();
        randomOrg.Reply = System.Text.Encoding.UTF8.GetBytes("{\"jsonrpc\":\"2.0\",\"result\":{\"random\":{\"data\":[\"" + new string('A', 3 << 20) + "\"]}},\"id\":1}");
        Assert.Equal(Refiller.Outcome.Failed, await app.Services.GetRequiredService<Refiller>().RefillOnceAsync(default));
        Assert.Contains("could not be read: larger than 1024 KiB", (await StatusAsync(app))["randomOrg"]!["lastError"]!.GetValue<string>());
    }

    [Fact]
    public async Task An_advisory_delay_over_ten_minutes_is_obeyed_for_ten_minutes()
    {
        await using var app = await NodeAsync(extra: new() { ["Entropy:PoolLowWaterBytes"] = "100000" });
        var refiller = app.Services.GetRequiredService<Refiller>();
        randomOrg.AdvisoryDelayMs = int.MaxValue;   // 24.8 days
        Assert.Equal(Refiller.Outcome.Refilled, await RefillAsync(app));
        randomOrg.AdvisoryDelayMs = 0;
        clock.Advance(TimeSpan.FromMinutes(9));
        Assert.Equal(Refiller.Outcome.Waiting, await refiller.RefillOnceAsync(default));
        clock.Advance(TimeSpan.FromMinutes(1.1));
        Assert.Equal(Refiller.Outcome.Refilled, await RefillAsync(app));
    }

    [Theory]
    [InlineData(BlobKind.Zeros)]
    [InlineData(BlobKind.Repeated)]
    [InlineData(BlobKind.Alternating)]
    public async Task Blobs_that_fail_the_health_tests_are_refused_and_counted(BlobKind kind)
    {
        await using var app = await NodeAsync();
        randomOrg.Blobs = kind;
        Assert.Equal(Refiller.Outcome.Rejected, await app.Services.GetRequiredService<Refiller>().RefillOnceAsync(default));
        Assert.False(await app.Services.GetRequiredService<Refiller>().ReseedOnceAsync());
        var status = await StatusAsync(app);
        Assert.Equal(0, status["poolBytes"]!.GetValue<long>());
        Assert.Contains("health tests", status["randomOrg"]!["lastError"]!.GetValue<string>());
        Assert.Equal("os", status["mode"]!.GetValue<string>());
        await using var raw = await StackExchange.Redis.ConnectionMultiplexer.ConnectAsync(redis.ConnectionString);
        Assert.Equal(1, (long)await raw.GetDatabase().StringGetAsync(Refiller.RejectedKey));
    }

    [Fact]
    public async Task A_source_refused_twice_in_a_row_is_backed_off_and_one_good_blob_ends_that()
    {
        await using var app = await NodeAsync(extra: new() { ["Entropy:PoolLowWaterBytes"] = "100000" });
        var refiller = app.Services.GetRequiredService<Refiller>();
        randomOrg.Blobs = BlobKind.Zeros;
        Assert.Equal(Refiller.Outcome.Rejected, await refiller.RefillOnceAsync(default));   // once: genuine noise does that
        Assert.Equal(Refiller.Outcome.Rejected, await refiller.RefillOnceAsync(default));   // twice: stuck
        var calls = randomOrg.GenerateBlobsCalls;
        clock.Advance(TimeSpan.FromSeconds(29));
        Assert.Equal(Refiller.Outcome.Waiting, await refiller.RefillOnceAsync(default));
        Assert.Equal(calls, randomOrg.GenerateBlobsCalls);
        clock.Advance(TimeSpan.FromSeconds(2));
        Assert.Equal(Refiller.Outcome.Rejected, await refiller.RefillOnceAsync(default));
        clock.Advance(TimeSpan.FromSeconds(31));
        Assert.Equal(Refiller.Outcome.Waiting, await refiller.RefillOnceAsync(default));   // the third: 60 s
        clock.Advance(TimeSpan.FromSeconds(30));
        randomOrg.Blobs = BlobKind.Random;
        Assert.Equal(Refiller.Outcome.Refilled, await RefillAsync(app));
        Assert.Equal(Refiller.Outcome.Refilled, await RefillAsync(app));   // no back-off left over
        randomOrg.Blobs = BlobKind.Zeros;
        Assert.Equal(Refiller.Outcome.Rejected, await refiller.RefillOnceAsync(default));
        Assert.Equal(Refiller.Outcome.Rejected, await refiller.RefillOnceAsync(default));   // the count began again
    }

    [Fact]
    public async Task Pacing_spreads_a_free_days_budget_over_the_whole_day_even_for_a_hungry_cluster()
    {
        // Three nodes each reseeding every minute want 3 × 256 × 1,440 ≈ 1.1 M bits a day: over
        // four times a free key's 250,000. Pacing must still keep atmospheric input flowing into
        // the evening and never overspend.
        clock.SetUtcNow(new DateTimeOffset(2026, 11, 26, 0, 0, 0, TimeSpan.Zero));
        var nodes = await Task.WhenAll(NodeAsync(), NodeAsync(), NodeAsync());
        try
        {
            var budget = new EntropyOptions().DailyBitBudget;
            var atmosphericHours = new HashSet<int>();
            for (var minute = 0; minute < 24 * 60; minute++)
            {
                foreach (var node in nodes)
                {
                    var refiller = node.Services.GetRequiredService<Refiller>();
                    await refiller.RefillOnceAsync(default);
                    if (await refiller.ReseedOnceAsync()) atmosphericHours.Add(minute / 60);
                }
                var served = randomOrg.BitsServed;
                Assert.True(served <= budget * ((minute + 1) / 60.0 + 1) / 25,
                    $"{served} bits spent by minute {minute}");
                clock.Advance(TimeSpan.FromMinutes(1));
            }
            Assert.Equal(Enumerable.Range(0, 24), atmosphericHours.Order());
            Assert.InRange(randomOrg.BitsServed, budget * 0.9, budget);
            Assert.True(randomOrg.GenerateBlobsCalls <= 1000);
            Assert.True(randomOrg.MaxConcurrentRequests == 1);
        }
        finally
        {
            foreach (var node in nodes) await node.DisposeAsync();
        }
    }
}
