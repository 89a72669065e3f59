using System.Diagnostics;
using Ams.Testing;
using Ams.Tests.Messaging;
using Ams.Tests.Support;
using StackExchange.Redis;

namespace Ams.Tests.Accounts;

public sealed class ThrottleTests(Services services) : IClassFixture<Services>
{
    static Task<IScenarioResult> Attempt(IAlbaHost app, string username, string password, string ip, int status, string? forwardedFor = null) =>
        app.Scenario(s =>
        {
            s.Post.Json(new { username, password }).ToUrl("/api/login");
            s.From(ip);
            if (forwardedFor is not null) s.WithRequestHeader("X-Forwarded-For", forwardedFor);
            s.StatusCodeShouldBe(status);
        });

    /// <summary><paramref name="count"/> sign-ins at once, from addresses 203.0.113.<paramref name="firstHost"/> onward.</summary>
    static Task<IScenarioResult[]> AtOnceAsync(IAlbaHost app, string username, string password, int count, int firstHost) =>
        Task.WhenAll(Enumerable.Range(0, count).Select(i => app.Scenario(s =>
        {
            s.Post.Json(new { username, password }).ToUrl("/api/login");
            s.From($"203.0.113.{firstHost + i}");
            s.IgnoreStatusCode();
        })));

    [Fact]
    public async Task Five_failures_lock_the_account_with_429_and_Retry_After_even_for_the_right_password()
    {
        var app = await services.AppAsync();
        var name = Api.UniqueName("lock");
        await app.RegisterAsync(name);
        for (var i = 0; i < 5; i++)
            await Attempt(app, name, "wrong password!", $"203.0.113.{10 + i}", 401);
        var locked = await Attempt(app, name, "wrong password!", "203.0.113.40", 429);
        var problem = await locked.ProblemAsync(429);
        var retryAfter = int.Parse(locked.Context.Response.Headers.RetryAfter.ToString());
        Assert.InRange(retryAfter, 1, 15 * 60);
        Assert.NotNull(problem["title"]);
        await Attempt(app, name, Api.Password, "203.0.113.41", 429);
    }

    [Fact]
    public async Task Correct_passwords_do_not_use_up_the_address_budget()
    {
        // Many people behind one NAT address sign in successfully all day.
        await using var app = await services.StartAppAsync(settings: new Dictionary<string, string?> { ["Login:MaxFailuresPerAddress"] = "3" });
        var name = Api.UniqueName("nat");
        await app.RegisterAsync(name);
        for (var i = 0; i < 5; i++) await Attempt(app, name, Api.Password, "203.0.113.90", 200);
    }

    [Fact]
    public async Task A_successful_login_clears_the_account_budget()
    {
        var app = await services.AppAsync();
        var name = Api.UniqueName("reset");
        await app.RegisterAsync(name);
        for (var i = 0; i < 4; i++) await Attempt(app, name, "wrong password!", "203.0.113.50", 401);
        await Attempt(app, name, Api.Password, "203.0.113.50", 200);
        for (var i = 0; i < 4; i++) await Attempt(app, name, "wrong password!", "203.0.113.50", 401);
        await Attempt(app, name, Api.Password, "203.0.113.50", 200);
    }

    [Fact]
    public async Task One_address_spraying_many_accounts_is_throttled_and_a_forged_X_Forwarded_For_does_not_help()
    {
        var app = await services.AppAsync();
        const string ip = "203.0.113.77";
        for (var i = 0; i < 30; i++)
            await Attempt(app, Api.UniqueName("spray"), "wrong password!", ip, 401, forwardedFor: $"10.0.0.{i}");
        var blocked = await Attempt(app, Api.UniqueName("spray"), "wrong password!", ip, 429, forwardedFor: "10.9.9.9");
        Assert.True(blocked.Context.Response.Headers.ContainsKey("Retry-After"));
        // Another address is unaffected.
        await Attempt(app, Api.UniqueName("spray"), "wrong password!", "203.0.113.78", 401);
    }

    [Fact]
    public async Task A_sprayer_cannot_clear_the_address_budget_by_signing_in_to_an_account_of_its_own()
    {
        var app = await services.AppAsync();
        const string ip = "203.0.113.79";
        var own = Api.UniqueName("own");
        await app.RegisterAsync(own);
        for (var i = 0; i < 29; i++) await Attempt(app, Api.UniqueName("spray"), "wrong password!", ip, 401);
        await Attempt(app, own, Api.Password, ip, 200);
        await Attempt(app, Api.UniqueName("spray"), "wrong password!", ip, 401);
        await Attempt(app, Api.UniqueName("spray"), "wrong password!", ip, 429);
    }

    [Fact]
    public async Task The_budget_is_shared_by_every_node()
    {
        var node1 = await services.AppAsync();
        await using var node2 = await services.StartAppAsync();
        var name = Api.UniqueName("nodes");
        await node1.RegisterAsync(name);
        for (var i = 0; i < 5; i++)
            await Attempt(i % 2 == 0 ? node1 : node2, name, "wrong password!", "203.0.113.90", 401);
        await Attempt(node2, name, "wrong password!", "203.0.113.91", 429);
        await Attempt(node1, name, "wrong password!", "203.0.113.92", 429);
    }

    [Fact]
    public async Task Parallel_guesses_cannot_slip_past_the_limit()
    {
        var app = await services.AppAsync();
        var name = Api.UniqueName("burst");
        await app.RegisterAsync(name);
        var results = await AtOnceAsync(app, name, "wrong password!", 12, firstHost: 100);
        var statuses = results.Select(r => r.Context.Response.StatusCode).ToList();
        Assert.Equal(5, statuses.Count(s => s == 401));
        Assert.Equal(7, statuses.Count(s => s == 429));
    }

    [Fact]
    public async Task Parallel_sign_ins_with_the_right_password_all_get_in()
    {
        // A script's or several tabs' at once: the attempts beyond the budget wait for those being
        // checked, and each right password frees its place.
        var app = await services.AppAsync();
        var name = Api.UniqueName("tabs");
        await app.RegisterAsync(name);
        var results = await AtOnceAsync(app, name, Api.Password, 24, firstHost: 130);
        Assert.All(results, r => Assert.Equal(200, r.Context.Response.StatusCode));
        await Attempt(app, name, Api.Password, "203.0.113.129", 200);
    }

    /// <summary>A new account: its name and id.</summary>
    static async Task<(string Name, string Id)> AccountAsync(IAlbaHost app, string prefix)
    {
        var name = Api.UniqueName(prefix);
        return (name, (await app.RegisterAsync(name))["id"].Str());
    }

    /// <summary>Fills the account's budget with attempts being checked on some node, lapsing at <paramref name="lapse"/>.</summary>
    static async Task<RedisKey> CheckingElsewhereAsync(IDatabase db, string userId, DateTimeOffset lapse)
    {
        RedisKey checking = $"ams:login-checking:{{login}}:account:id:{userId}";
        foreach (var i in Enumerable.Range(0, 5)) await db.SortedSetAddAsync(checking, $"elsewhere-{i}", lapse.ToUnixTimeMilliseconds());
        await db.KeyExpireAsync(checking, TimeSpan.FromMinutes(2));
        return checking;
    }

    [Fact]
    public async Task An_attempt_waits_for_those_being_checked_and_not_for_those_of_a_dead_node()
    {
        var app = await services.AppAsync();
        var (name, id) = await AccountAsync(app, "queue");
        await using var redis = await ConnectionMultiplexer.ConnectAsync(services.Redis.ConnectionString);
        var db = redis.GetDatabase();
        var checking = await CheckingElsewhereAsync(db, id, DateTimeOffset.UtcNow.AddMinutes(1));
        var signIn = Attempt(app, name, Api.Password, "203.0.113.140", 200);
        await Task.Delay(700);
        Assert.False(signIn.IsCompleted);
        await db.SortedSetRemoveAsync(checking, "elsewhere-0");
        await signIn.WaitAsync(TimeSpan.FromSeconds(5));

        // A node that died mid-check leaves its attempts to lapse; they hold no place after that.
        await CheckingElsewhereAsync(db, id, DateTimeOffset.UtcNow.AddSeconds(-1));
        await Attempt(app, name, Api.Password, "203.0.113.141", 200).WaitAsync(TimeSpan.FromSeconds(5));
    }

    [Fact]
    public async Task An_attempt_that_waits_too_long_is_answered_busy_and_counts_as_no_failure()
    {
        var app = await services.AppAsync();
        var (name, id) = await AccountAsync(app, "busy");
        await using var redis = await ConnectionMultiplexer.ConnectAsync(services.Redis.ConnectionString);
        var db = redis.GetDatabase();
        var checking = await CheckingElsewhereAsync(db, id, DateTimeOffset.UtcNow.AddMinutes(1));
        var waited = Stopwatch.StartNew();
        var refused = await Attempt(app, name, "wrong password!", "203.0.113.150", 503);
        Assert.InRange(waited.Elapsed, TimeSpan.FromSeconds(9.5), TimeSpan.FromSeconds(30));
        Assert.Equal("Server busy", (await refused.ProblemAsync(503))["title"].Str());
        Assert.True(refused.Context.Response.Headers.ContainsKey("Retry-After"));

        // No password was checked, so nothing was counted: five failures still end in 401.
        await db.KeyDeleteAsync(checking);
        for (var i = 0; i < 5; i++) await Attempt(app, name, "wrong password!", "203.0.113.151", 401);
        await Attempt(app, name, Api.Password, "203.0.113.151", 429);
    }

    [Fact]
    public async Task At_most_256_attempts_wait_on_a_node_and_the_rest_are_answered_busy_at_once()
    {
        var app = await services.AppAsync();
        var (name, id) = await AccountAsync(app, "crowd");
        await using var redis = await ConnectionMultiplexer.ConnectAsync(services.Redis.ConnectionString);
        await CheckingElsewhereAsync(redis.GetDatabase(), id, DateTimeOffset.UtcNow.AddMinutes(1));
        const int beyond = 20;
        var watch = Stopwatch.StartNew();
        var answers = await Task.WhenAll(Enumerable.Range(0, Ams.Features.Login.Throttle.MostWaiting + beyond).Select(async i =>
        {
            var result = await app.Scenario(s =>
            {
                s.Post.Json(new { username = name, password = Api.Password }).ToUrl("/api/login");
                s.From($"198.18.{i / 200}.{i % 200 + 1}");
                s.IgnoreStatusCode();
            });
            return (Status: result.Context.Response.StatusCode, Elapsed: watch.Elapsed);
        }));
        Assert.All(answers, a => Assert.Equal(503, a.Status));
        // Those waiting get theirs after 10 s; only the ones past the limit are answered before.
        Assert.Equal(beyond, answers.Count(a => a.Elapsed < TimeSpan.FromSeconds(8)));
    }

    [Fact]
    public async Task Sign_ins_cut_off_by_a_Redis_pause_hold_no_place_once_it_resumes()
    {
        await using var redis = await RedisServer.StartAsync();
        await using var app = await services.StartAppAsync(redis: redis.ConnectionString);
        var (name, id) = await AccountAsync(app, "pause");
        IScenarioResult[] cutOff;
        redis.Pause();
        try
        {
            // Five at once: each admission goes out before the first runs out of time, and the
            // paused Redis runs them all when it resumes, after their requests got 503.
            cutOff = await AtOnceAsync(app, name, Api.Password, 5, firstHost: 160);
        }
        finally
        {
            redis.Resume();
        }
        Assert.All(cutOff, r => Assert.Equal(503, r.Context.Response.StatusCode));
        // Once the node hears Redis again (its circuit probes every 250 ms), a sign-in finds no place taken.
        for (var i = 0; i < 100 && (await app.Scenario(s => { s.Get.Url("/healthz"); s.IgnoreStatusCode(); })).Context.Response.StatusCode != 200; i++)
            await Task.Delay(100);
        var watch = Stopwatch.StartNew();
        await Attempt(app, name, Api.Password, "203.0.113.170", 200);
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(5), $"the sign-in after the pause took {watch.Elapsed.TotalSeconds:F1} s");
        // And every cut-off attempt is taken back soon after, not left to lapse in 2 minutes.
        await using var connection = await ConnectionMultiplexer.ConnectAsync(redis.ConnectionString);
        long left = -1;
        for (var i = 0; i < 50 && left != 0; i++, await Task.Delay(100))
            left = await connection.GetDatabase().SortedSetLengthAsync($"ams:login-checking:{{login}}:account:id:{id}");
        Assert.Equal(0, left);
    }

    [Fact]
    public async Task A_known_device_has_a_budget_of_its_own_that_ends_in_429_with_Retry_After()
    {
        var app = await services.AppAsync();
        var name = Api.UniqueName("device");
        await app.RegisterAsync(name);
        async Task<string> DeviceTokenAsync() => (await (await Attempt(app, name, Api.Password, "203.0.113.120", 200)).JsonAsync())["deviceToken"]!.GetValue<string>();
        var laptop = await DeviceTokenAsync();
        var phone = await DeviceTokenAsync();
        Assert.NotEqual(laptop, phone);

        Task<IScenarioResult> FromDevice(string deviceToken, string password, int status) => app.Scenario(s =>
        {
            s.Post.Json(new { username = name, password, deviceToken }).ToUrl("/api/login");
            s.From("203.0.113.121");
            s.StatusCodeShouldBe(status);
        });
        for (var i = 0; i < 5; i++) await FromDevice(laptop, "wrong password!", 401);
        var throttled = await FromDevice(laptop, Api.Password, 429);
        await throttled.ProblemAsync(429);
        Assert.InRange(int.Parse(throttled.Context.Response.Headers.RetryAfter.ToString()), 1, 15 * 60);

        // The phone's budget is untouched by the laptop's failures, and so is the account's.
        await FromDevice(phone, Api.Password, 200);
        await Attempt(app, name, Api.Password, "203.0.113.122", 200);

        // A right password from a device cleans that device's slate: four and four more failures fit.
        for (var i = 0; i < 4; i++) await FromDevice(phone, "wrong password!", 401);
        await FromDevice(phone, Api.Password, 200);
        for (var i = 0; i < 4; i++) await FromDevice(phone, "wrong password!", 401);
        await FromDevice(phone, Api.Password, 200);
    }
}
