using System.Diagnostics;
using Ams.Testing;
using Ams.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Ams.Tests.Platform;

public sealed class HealthTests(Services services) : IClassFixture<Services>
{
    [Fact]
    public async Task Healthz_reports_both_parts_ok_without_authentication()
    {
        var app = await services.AppAsync();
        var result = await app.Scenario(s => { s.Get.Url("/healthz"); s.StatusCodeShouldBe(200); });
        Assert.Equal("""{"status":"ok","mariadb":"ok","redis":"ok"}""", await result.ReadAsTextAsync());
    }

    [Fact]
    public async Task With_Redis_down_healthz_is_503_naming_redis_and_API_calls_get_503_problems_without_internals()
    {
        await using var redis = await RedisServer.StartAsync();
        await using var app = await services.StartAppAsync(redis: redis.ConnectionString + ",connectTimeout=500,syncTimeout=500,asyncTimeout=500");
        var token = await app.NewUserTokenAsync();
        await redis.StopAsync();

        var health = await app.Scenario(s => { s.Get.Url("/healthz"); s.StatusCodeShouldBe(503); });
        var body = await health.JsonAsync();
        Assert.Equal("ok", body["mariadb"]!.GetValue<string>());
        Assert.NotEqual("ok", body["redis"]!.GetValue<string>());
        Assert.NotEqual("ok", body["status"]!.GetValue<string>());

        var me = await app.Scenario(s => { s.Get.Url("/api/me"); s.WithBearerToken(token); s.StatusCodeShouldBe(503); });
        await me.ProblemAsync(503);
        Assert.True(me.Context.Response.Headers.ContainsKey("Retry-After"));
        var login = await app.Scenario(s =>
        {
            s.Post.Json(new { username = "someone", password = Api.Password }).ToUrl("/api/login");
            s.From("192.0.2.99");
            s.StatusCodeShouldBe(503);
        });
        await login.ProblemAsync(503);

        await redis.StartAgainAsync();
        await Eventually.TrueAsync(async () => (await app.Scenario(s => { s.Get.Url("/healthz"); s.IgnoreStatusCode(); })).Context.Response.StatusCode == 200, TimeSpan.FromSeconds(20));
    }

    [Fact]
    public async Task A_load_balancer_polling_through_an_outage_gets_one_log_line_as_it_starts_and_one_as_it_ends()
    {
        await using var redis = await RedisServer.StartAsync();
        var logs = new CapturedLogs();
        await using var app = await services.StartAppAsync(redis: redis.ConnectionString + ",connectTimeout=500,syncTimeout=500,asyncTimeout=500",
            services: s => s.AddSingleton<ILoggerProvider>(logs));
        await redis.StopAsync();
        for (var i = 0; i < 4; i++)
        {
            var down = await app.Scenario(s => { s.Get.Url("/readyz"); s.StatusCodeShouldBe(503); });
            Assert.Equal("unreachable", (await down.JsonAsync())["redis"]!.GetValue<string>());
            Assert.Equal("5", down.Context.Response.Headers.RetryAfter.ToString());
        }
        await redis.StartAgainAsync();
        await Eventually.TrueAsync(async () => (await app.Scenario(s => { s.Get.Url("/readyz"); s.IgnoreStatusCode(); })).Context.Response.StatusCode == 200, TimeSpan.FromSeconds(20));
        for (var i = 0; i < 2; i++) await app.Scenario(s => { s.Get.Url("/readyz"); s.StatusCodeShouldBe(200); });
        var failed = Assert.Single(logs.Lines, l => l.Contains("Health check of redis failed", StringComparison.Ordinal));
        Assert.Single(logs.Lines, l => l.Contains("Health check of redis passes again", StringComparison.Ordinal));
        // What went wrong, not the Redis client's kilobyte of diagnostics (an outside check).
        Assert.DoesNotContain("IOCP", failed);
        Assert.True(failed.Length < 300, failed);
        Assert.DoesNotContain(logs.Lines, l => l.Contains("Health check of mariadb", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_lost_Redis_connection_is_one_warning_and_its_return_one_line_though_nothing_was_refused()
    {
        await using var redis = await RedisServer.StartAsync();
        var logs = new CapturedLogs();
        await using var app = await services.StartAppAsync(redis: redis.ConnectionString + ",connectTimeout=500",
            services: s => s.AddSingleton<ILoggerProvider>(logs));
        await redis.StopAsync();
        await Eventually.TrueAsync(() => logs.Lines.Any(l => l.Contains("The connection to Redis at", StringComparison.Ordinal) && l.Contains("is lost", StringComparison.Ordinal)),
            TimeSpan.FromSeconds(20));
        await Task.Delay(TimeSpan.FromSeconds(3));   // reconnect attempts fail meanwhile, each raising the client's event again
        await redis.StartAgainAsync();
        await Eventually.TrueAsync(() => logs.Lines.Any(l => l.Contains("is back after", StringComparison.Ordinal)), TimeSpan.FromSeconds(20));
        var lost = Assert.Single(logs.Lines, l => l.Contains("is lost (", StringComparison.Ordinal));
        Assert.StartsWith("Warning", lost);
        Assert.Contains(redis.ConnectionString.Split(',')[0], lost);
        Assert.Matches(@"^Information .*The connection to Redis at \S+ is back after \d+\.\d s$", Assert.Single(logs.Lines, l => l.Contains("is back after", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task A_hung_Redis_fails_the_health_check_within_the_Redis_budget_then_at_once_and_the_log_says_so()
    {
        await using var redis = await RedisServer.StartAsync();
        var logs = new CapturedLogs();
        await using var app = await services.StartAppAsync(redis: redis.ConnectionString, services: s => s.AddSingleton<ILoggerProvider>(logs));
        redis.Pause();
        try
        {
            // The first check waits out the Redis budget (1 s; a load balancer gives up after 1 s
            // in docs/proxy): the margin is for a loaded machine, not for the old 2 s.
            var watch = Stopwatch.StartNew();
            var health = await app.Scenario(s => { s.Get.Url("/readyz"); s.StatusCodeShouldBe(503); });
            Assert.True(watch.Elapsed < Ams.Infrastructure.RedisCircuit.Budget + TimeSpan.FromSeconds(0.9), $"answered after {watch.Elapsed.TotalSeconds:F1} s");
            // Worded as for a hung MariaDB; a Redis that refuses the connection is "unreachable" (above).
            Assert.Equal("not answering", (await health.JsonAsync())["redis"]!.GetValue<string>());
            // The next ones, while Redis is known not to answer, at once.
            watch.Restart();
            var again = await app.Scenario(s => { s.Get.Url("/readyz"); s.StatusCodeShouldBe(503); });
            Assert.True(watch.Elapsed < TimeSpan.FromSeconds(0.5), $"the second check answered after {watch.Elapsed.TotalSeconds:F1} s");
            Assert.Equal("not answering", (await again.JsonAsync())["redis"]!.GetValue<string>());
        }
        finally
        {
            redis.Resume();
        }
        var failed = Assert.Single(logs.Lines, l => l.Contains("Health check of redis failed", StringComparison.Ordinal));
        Assert.Contains("is not answering", failed);
        await Eventually.TrueAsync(async () => (await app.Scenario(s => { s.Get.Url("/readyz"); s.IgnoreStatusCode(); })).Context.Response.StatusCode == 200, TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task A_node_signs_users_in_again_within_a_second_of_Redis_coming_back_empty_after_an_outage()
    {
        await using var redis = await RedisServer.StartAsync();
        // The production timeouts: the client's reconnect policy derives from them.
        await using var app = await services.StartAppAsync(redis: redis.ConnectionString);
        var name = Api.UniqueName("rc");
        await app.RegisterAsync(name);
        await redis.StopAsync();
        await Eventually.TrueAsync(async () => (await app.Scenario(s => { s.Get.Url("/healthz"); s.IgnoreStatusCode(); })).Context.Response.StatusCode == 503, TimeSpan.FromSeconds(20));
        // Long enough for the client to have tried and failed a few times (its backoff grows).
        await Task.Delay(TimeSpan.FromSeconds(4));

        await redis.StartAgainAsync();   // answers PING
        var back = Stopwatch.StartNew();
        while (true)
        {
            var login = await app.Scenario(s => { s.Post.Json(new { username = name, password = Api.Password }).ToUrl("/api/login"); s.IgnoreStatusCode(); });
            if (login.Context.Response.StatusCode == 200) break;
            Assert.Equal(503, login.Context.Response.StatusCode);
            Assert.True(back.Elapsed < TimeSpan.FromSeconds(10), "no sign-in within 10 s of Redis's return");
            await Task.Delay(50);
        }
        // Before: 2.5 s at least (the client waited ConnectTimeout / 2 between attempts), up to 10 s.
        Assert.True(back.Elapsed < TimeSpan.FromSeconds(2), $"the first sign-in after Redis came back took {back.Elapsed.TotalSeconds:F2} s");
    }

    [Fact]
    public async Task With_MariaDB_down_healthz_is_503_naming_mariadb_and_its_return_is_logged_with_the_refusals()
    {
        var mariadb = await MariaDbServer.StartAsync();
        var logs = new CapturedLogs();
        try
        {
            await mariadb.CreateDatabaseAsync("ams");
            // A node of the class's kind whose database is on the server this test stops.
            await using var app = await services.StartAppAsync(
                settings: [new("ConnectionStrings:MariaDb", mariadb.ConnectionString("ams") + "Connection Timeout=1;")],
                services: s => s.AddSingleton<ILoggerProvider>(logs));
            await mariadb.StopAsync();
            var health = await app.Scenario(s => { s.Get.Url("/healthz"); s.StatusCodeShouldBe(503); });
            for (var i = 0; i < 5; i++)
                await (await app.Scenario(s =>
                {
                    s.Post.Json(new { username = Api.UniqueName(), password = Api.Password }).ToUrl("/api/register");
                    s.StatusCodeShouldBe(503);
                })).ProblemAsync(503);
            Assert.DoesNotContain(logs.Lines, l => l.Contains("   at ", StringComparison.Ordinal));
            Assert.DoesNotContain(logs.Lines, l => l.Contains("unhandled exception", StringComparison.OrdinalIgnoreCase));
            Assert.Single(logs.Lines, l => l.StartsWith("Warning Ams.Infrastructure.Outages: MariaDB is unreachable (", StringComparison.Ordinal));
            var body = await health.JsonAsync();
            Assert.NotEqual("ok", body["mariadb"]!.GetValue<string>());
            Assert.Equal("ok", body["redis"]!.GetValue<string>());
            var register = await app.Scenario(s =>
            {
                s.Post.Json(new { username = Api.UniqueName(), password = Api.Password }).ToUrl("/api/register");
                s.StatusCodeShouldBe(503);
            });
            await register.ProblemAsync(503);

            // Probed once a second: still down is not logged as back.
            await Task.Delay(TimeSpan.FromSeconds(2.5));
            Assert.DoesNotContain(logs.Lines, l => l.Contains("reachable again", StringComparison.Ordinal));
            await mariadb.StartAgainAsync();
            await Eventually.TrueAsync(() => logs.Lines.Any(l => l.Contains("Outages: MariaDB is reachable again", StringComparison.Ordinal)), TimeSpan.FromSeconds(20));
            var back = Assert.Single(logs.Lines, l => l.Contains("Outages: MariaDB is reachable again", StringComparison.Ordinal));
            Assert.StartsWith("Information ", back);
            Assert.EndsWith("; 6 requests were refused meanwhile", back);
            await app.Scenario(s =>
            {
                s.Post.Json(new { username = Api.UniqueName(), password = Api.Password }).ToUrl("/api/register");
                s.StatusCodeShouldBe(201);
            });
        }
        finally
        {
            await mariadb.DisposeAsync();
        }
    }

    [Fact]
    public async Task A_Redis_outage_logs_one_line_as_it_starts_and_one_as_it_ends_not_a_stack_trace_per_refused_request()
    {
        await using var redis = await RedisServer.StartAsync();
        var logs = new CapturedLogs();
        await using var app = await services.StartAppAsync(redis: redis.ConnectionString, services: s => s.AddSingleton<ILoggerProvider>(logs));
        await redis.StopAsync();

        const int refused = 25;
        for (var i = 0; i < refused; i++)
            await (await app.Scenario(s => { s.Get.Url("/api/me"); s.WithBearerToken("ams_" + new string((char)('a' + i), 43)); s.StatusCodeShouldBe(503); })).ProblemAsync(503);
        Assert.DoesNotContain(logs.Lines, l => l.Contains("unhandled exception", StringComparison.OrdinalIgnoreCase));
        Assert.DoesNotContain("   at ", logs.All);
        Assert.Single(logs.Lines, l => l.StartsWith("Warning Ams.Infrastructure.Outages: Redis is unreachable (", StringComparison.Ordinal));

        await redis.StartAgainAsync();
        await Eventually.TrueAsync(() => logs.Lines.Any(l => l.Contains("Outages: Redis is reachable again", StringComparison.Ordinal)), TimeSpan.FromSeconds(20));
        var back = Assert.Single(logs.Lines, l => l.Contains("Outages: Redis is reachable again", StringComparison.Ordinal));
        Assert.StartsWith("Information ", back);
        Assert.EndsWith($"; {refused} requests were refused meanwhile", back);
        var fresh = await app.NewUserTokenAsync();   // this Redis kept nothing: a new session shows it serves again
        await app.Scenario(s => { s.Get.Url("/api/me"); s.WithBearerToken(fresh); s.StatusCodeShouldBe(200); });

        // The next outage is a new one, logged again (the handler may log just after the response).
        await redis.StopAsync();
        await app.Scenario(s => { s.Get.Url("/api/me"); s.WithBearerToken("ams_" + new string('z', 43)); s.StatusCodeShouldBe(503); });
        await Eventually.TrueAsync(() => logs.Lines.Count(l => l.Contains("Outages: Redis is unreachable", StringComparison.Ordinal)) == 2, TimeSpan.FromSeconds(20));
    }
}
