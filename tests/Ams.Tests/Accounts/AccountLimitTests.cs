using Ams.Infrastructure;
using Ams.Tests.Messaging;
using Ams.Tests.Support;
using Microsoft.Extensions.DependencyInjection;

namespace Ams.Tests.Accounts;

/// <summary>Issue 12's account limits: canonical throttle keys, device tokens, registration and hashing limits.</summary>
public sealed class AccountLimitTests(Services services) : IClassFixture<Services>
{
    static Task<IScenarioResult> Login(IAlbaHost app, object body, string ip, int status) =>
        app.Scenario(s =>
        {
            s.Post.Json(body).ToUrl("/api/login");
            s.From(ip);
            s.StatusCodeShouldBe(status);
        });

    [Fact]
    public async Task Every_spelling_of_a_name_counts_against_the_one_account()
    {
        var app = await services.AppAsync();
        var name = Api.UniqueName("spell");
        await app.RegisterAsync(name);
        string[] spellings = [name, name.ToUpperInvariant(), name + "   ", name + " ", char.ToUpperInvariant(name[0]) + name[1..] + "  "];
        for (var i = 0; i < 5; i++)
            await Login(app, new { username = spellings[i], password = "wrong password!" }, $"198.51.100.{10 + i}", 401);
        foreach (var spelling in new[] { name.ToUpperInvariant() + "    ", name, name + "\t" })
            await Login(app, new { username = spelling, password = "wrong password!" }, "198.51.100.40", spelling.EndsWith('\t') ? 401 : 429);
        await Login(app, new { username = name, password = Api.Password }, "198.51.100.41", 429);
    }

    [Fact]
    public async Task A_client_that_signed_in_before_still_gets_in_while_strangers_are_throttled()
    {
        var app = await services.AppAsync();
        var name = Api.UniqueName("dev");
        await app.RegisterAsync(name);
        var first = await (await Login(app, new { username = name, password = Api.Password }, "198.51.100.60", 200)).JsonAsync();
        var deviceToken = first["deviceToken"]!.GetValue<string>();
        Assert.StartsWith("amd_", deviceToken);
        for (var i = 0; i < 5; i++)
            await Login(app, new { username = name, password = "wrong password!" }, $"198.51.100.{70 + i}", 401);
        // A stranger, even with the right password, is throttled ...
        await Login(app, new { username = name, password = Api.Password }, "198.51.100.80", 429);
        // ... a forged or another account's device token does not help ...
        await Login(app, new { username = name, password = Api.Password, deviceToken = deviceToken[..^4] + "AAAA" }, "198.51.100.80", 429);
        var other = Api.UniqueName("dev");
        await app.RegisterAsync(other);
        var othersToken = (await (await Login(app, new { username = other, password = Api.Password }, "198.51.100.81", 200)).JsonAsync())["deviceToken"]!.GetValue<string>();
        await Login(app, new { username = name, password = Api.Password, deviceToken = othersToken }, "198.51.100.81", 429);
        // ... but the owner's device gets in, and keeps its token.
        var again = await (await Login(app, new { username = name, password = Api.Password, deviceToken }, "198.51.100.60", 200)).JsonAsync();
        Assert.Equal(deviceToken, again["deviceToken"]!.GetValue<string>());
        // The strangers' count is not forgiven by the owner's success.
        await Login(app, new { username = name, password = Api.Password }, "198.51.100.82", 429);
    }

    [Theory]
    [InlineData("amd_A")]
    [InlineData("amd_AAAAA")]
    [InlineData("amd_!!!!")]
    [InlineData("amd_====")]
    [InlineData("amd_%%%")]
    [InlineData("truncated")]   // a real token with one character cut off
    public async Task A_mangled_device_token_is_no_device_in_the_body_or_the_cookie(string token)
    {
        var app = await services.AppAsync();
        var name = Api.UniqueName("mdt");
        await app.RegisterAsync(name);
        var real = (await (await Login(app, new { username = name, password = Api.Password }, "198.51.100.91", 200)).JsonAsync())["deviceToken"]!.GetValue<string>();
        if (token == "truncated") token = real[..^1];
        // Signed in as a new device: a token of its own, not the mangled one back.
        var body = await (await Login(app, new { username = name, password = Api.Password, deviceToken = token }, "198.51.100.92", 200)).JsonAsync();
        Assert.NotEqual(token, body["deviceToken"]!.GetValue<string>());
        await Login(app, new { username = name, password = "wrong password!", deviceToken = token }, "198.51.100.92", 401);
        await app.Scenario(s =>
        {
            s.Post.Json(new { username = name, password = Api.Password }).ToUrl("/api/login");
            s.WithRequestHeader("Cookie", $"ams_device={Uri.EscapeDataString(token)}");
            s.From("198.51.100.93");
            s.StatusCodeShouldBe(200);
        });
    }

    [Fact]
    public async Task A_known_device_has_its_own_failure_limit()
    {
        var app = await services.AppAsync();
        var name = Api.UniqueName("devlim");
        await app.RegisterAsync(name);
        var deviceToken = (await (await Login(app, new { username = name, password = Api.Password }, "198.51.100.90", 200)).JsonAsync())["deviceToken"]!.GetValue<string>();
        for (var i = 0; i < 5; i++)
            await Login(app, new { username = name, password = "wrong password!", deviceToken }, "198.51.100.90", 401);
        var locked = await Login(app, new { username = name, password = Api.Password, deviceToken }, "198.51.100.90", 429);
        await locked.ProblemAsync(429);
        // The device's failures did not lock the account for everyone else.
        await Login(app, new { username = name, password = Api.Password }, "198.51.100.91", 200);
    }

    [Fact]
    public async Task Registrations_per_address_are_limited_with_429_and_Retry_After()
    {
        await using var app = await services.StartAppAsync(settings: new Dictionary<string, string?>
        {
            ["Registration:MaxPerAddress"] = "3",
            ["Registration:Window"] = "01:00:00",
        });
        Task<IScenarioResult> Register(string ip, int status) => app.Scenario(s =>
        {
            s.Post.Json(new { username = Api.UniqueName("reg"), password = Api.Password }).ToUrl("/api/register");
            s.From(ip);
            s.StatusCodeShouldBe(status);
        });
        for (var i = 0; i < 3; i++) await Register("198.51.100.120", 201);
        var refused = await Register("198.51.100.120", 429);
        await refused.ProblemAsync(429);
        Assert.InRange(int.Parse(refused.Context.Response.Headers.RetryAfter.ToString()), 1, 3600);
        await Register("198.51.100.121", 201);   // another address has its own budget
    }

    [Fact]
    public async Task Password_hashing_is_capped_per_node_and_the_overflow_gets_503_with_Retry_After()
    {
        var settings = new Dictionary<string, string?>(Services.ProductionPasswords)
        {
            ["Passwords:MaxConcurrent"] = "1",
            ["Passwords:QueueTimeoutMs"] = "0",
        };
        await using var app = await services.StartAppAsync(settings: settings);
        var results = await Task.WhenAll(Enumerable.Range(0, 8).Select(i => app.Scenario(s =>
        {
            s.Post.Json(new { username = Api.UniqueName("hash"), password = Api.Password }).ToUrl("/api/register");
            s.From($"198.51.100.{130 + i}");
            s.IgnoreStatusCode();
        })));
        var statuses = results.Select(r => r.Context.Response.StatusCode).ToList();
        Assert.All(statuses, s => Assert.True(s is 201 or 503, $"status {s}"));
        Assert.Contains(201, statuses);
        var busy = Assert.Single(results.Where(r => r.Context.Response.StatusCode == 503).Take(1));
        await busy.ProblemAsync(503);
        Assert.True(int.Parse(busy.Context.Response.Headers.RetryAfter.ToString()) >= 1);
    }

    [Fact]
    public async Task A_sign_in_refused_for_want_of_a_hashing_slot_is_no_failed_attempt_and_logs_no_stack_trace()
    {
        var settings = new Dictionary<string, string?>(Services.ProductionPasswords)
        {
            ["Passwords:MaxConcurrent"] = "1",
            ["Passwords:QueueTimeoutMs"] = "0",
        };
        var logs = new CapturedLogs();
        await using var app = await services.StartAppAsync(settings: settings,
            services: s => s.AddSingleton<Microsoft.Extensions.Logging.ILoggerProvider>(logs));
        var name = Api.UniqueName("busy");
        await app.RegisterAsync(name);
        // Wrong passwords at once, from addresses of their own: the account's budget (5) is the one in play.
        var burst = await Task.WhenAll(Enumerable.Range(0, 8).Select(i => app.Scenario(s =>
        {
            s.Post.Json(new { username = name, password = "wrong password!" }).ToUrl("/api/login");
            s.From($"198.51.100.{150 + i}");
            s.IgnoreStatusCode();
        })));
        var statuses = burst.Select(r => r.Context.Response.StatusCode).ToList();
        Assert.All(statuses, s => Assert.True(s is 401 or 429 or 503, $"status {s}"));
        var busy = burst.Where(r => r.Context.Response.StatusCode == 503).ToList();
        Assert.NotEmpty(busy);   // one slot, no queue: at most one check at a time ran
        foreach (var refused in busy)
        {
            Assert.Equal("Server busy", (await refused.ProblemAsync(503))["title"].Str());
            Assert.Equal("2", refused.Context.Response.Headers.RetryAfter.ToString());
        }
        // Only the checks that ran count: the account has 5 − (its 401s) wrong guesses left, one at a time.
        var left = 5 - statuses.Count(s => s == 401);
        for (var i = 0; i < left; i++)
            await Login(app, new { username = name, password = "wrong password!" }, $"198.51.100.{170 + i}", 401);
        await Login(app, new { username = name, password = Api.Password }, "198.51.100.180", 429);
        Assert.DoesNotContain(logs.Lines, l => l.Contains(nameof(PasswordHashingBusyException), StringComparison.Ordinal));
        // Counted instead (the meter is the process's: at least this test's refusals).
        var metrics = await (await app.Scenario(s => { s.Get.Url("/metrics"); s.From("127.0.0.1"); })).ReadAsTextAsync();
        var refusedTotal = System.Text.RegularExpressions.Regex.Match(metrics, @"(?m)^ams_passwords_refused_total (\d+)$");
        Assert.True(refusedTotal.Success, "no ams_passwords_refused_total");
        Assert.True(long.Parse(refusedTotal.Groups[1].Value) >= busy.Count);
    }
}
