using Ams.Tests.Support;

namespace Ams.Tests.Accounts;

public sealed class SessionTests(Services services) : IClassFixture<Services>
{
    static Task<IScenarioResult> Me(IAlbaHost app, string token, int status) => app.Scenario(s =>
    {
        s.Get.Url("/api/me");
        s.WithBearerToken(token);
        s.StatusCodeShouldBe(status);
    });

    [Fact]
    public async Task A_node_whose_host_stops_says_goodbye_so_a_logout_right_after_does_not_wait_for_it()
    {
        // Its goodbye went out once the host had closed its Redis connections, so it was never
        // heard, and every revocation for the next 2 s waited its whole acknowledgement limit.
        var node1 = await services.AppAsync();
        var node2 = await services.StartAppAsync();
        var token = await node1.NewUserTokenAsync();
        await Me(node2, token, 200);
        // Node 1 has listened long enough to count on acknowledgements, and heard node 2's pings lately.
        await Task.Delay(Ams.Infrastructure.SessionLifetime.HearingLimit + TimeSpan.FromSeconds(1));
        await node2.StopAsync();
        await node2.DisposeAsync();
        // Time for node 1 to hear it; well within the 2 s in which node 1 would otherwise wait for node 2.
        await Task.Delay(TimeSpan.FromMilliseconds(200));
        var revoking = System.Diagnostics.Stopwatch.StartNew();
        await node1.Scenario(s =>
        {
            s.Post.Url("/api/logout");
            s.WithBearerToken(token);
            s.StatusCodeShouldBe(204);
        });
        Assert.True(revoking.Elapsed < Ams.Infrastructure.SessionLifetime.HearingLimit * 0.8, $"the logout took {revoking.Elapsed.TotalMilliseconds:F0} ms");
    }

    [Fact]
    public async Task Logout_kills_the_token_on_every_node_at_once()
    {
        var node1 = await services.AppAsync();
        await using var node2 = await services.StartAppAsync();
        var token = await node1.NewUserTokenAsync();
        await Me(node2, token, 200);
        await node1.Scenario(s =>
        {
            s.Post.Url("/api/logout");
            s.WithBearerToken(token);
            s.StatusCodeShouldBe(204);
        });
        await (await Me(node2, token, 401)).ProblemAsync(401);
        await Me(node1, token, 401);
        await node2.Scenario(s =>
        {
            s.Post.Url("/api/logout");
            s.WithBearerToken(token);
            s.StatusCodeShouldBe(401);
        });
    }

    [Fact]
    public async Task Logout_ends_only_that_session()
    {
        var app = await services.AppAsync();
        var name = Api.UniqueName();
        await app.RegisterAsync(name);
        var phone = await app.LoginAsync(name);
        var laptop = await app.LoginAsync(name);
        await app.Scenario(s => { s.Post.Url("/api/logout"); s.WithBearerToken(phone); s.StatusCodeShouldBe(204); });
        await Me(app, phone, 401);
        await Me(app, laptop, 200);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("ams_forged")]
    [InlineData("ams_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")]
    [InlineData("not-even-our-format")]
    public async Task Missing_or_unknown_tokens_are_401_problems(string? token)
    {
        var app = await services.AppAsync();
        foreach (var (method, url) in new[] { ("GET", "/api/me"), ("POST", "/api/logout") })
        {
            var result = await app.Scenario(s =>
            {
                if (method == "GET") s.Get.Url(url); else s.Post.Url(url);
                if (token is not null) s.WithBearerToken(token);
                s.StatusCodeShouldBe(401);
            });
            await result.ProblemAsync(401);
            Assert.Equal("Bearer", result.Context.Response.Headers.WWWAuthenticate.ToString());
        }
    }

    [Fact]
    public async Task An_idle_session_expires_and_use_keeps_it_alive()
    {
        await using var app = await services.StartAppAsync(settings: new Dictionary<string, string?>
        {
            ["Sessions:IdleTimeout"] = "00:00:03",
            ["Sessions:AbsoluteLifetime"] = "01:00:00",
        });
        var kept = await app.NewUserTokenAsync();
        var idle = await app.NewUserTokenAsync();
        var idleSince = DateTime.UtcNow;
        for (var i = 0; i < 4; i++)
        {
            await Task.Delay(1000);
            await Me(app, kept, 200);
        }
        var wait = TimeSpan.FromSeconds(3.5) - (DateTime.UtcNow - idleSince);
        if (wait > TimeSpan.Zero) await Task.Delay(wait);
        await Me(app, idle, 401);
        await Me(app, kept, 200);
    }

    [Fact]
    public async Task A_session_keeps_the_idle_timeout_of_its_last_use_until_its_next()
    {
        // The README: a session from before a change of Sessions__IdleTimeout keeps the old one
        // until its next use. Two nodes on one Redis stand for the node before and after the change.
        await using var before = await services.StartAppAsync(settings: new Dictionary<string, string?> { ["Sessions:IdleTimeout"] = "00:00:05" });
        await using var after = await services.StartAppAsync(settings: new Dictionary<string, string?> { ["Sessions:IdleTimeout"] = "00:00:01" });
        var token = await before.NewUserTokenAsync();
        await Task.Delay(TimeSpan.FromSeconds(2));
        await Me(after, token, 200);   // idle 2 s: past the new timeout, within the old one
        await Task.Delay(TimeSpan.FromSeconds(2));
        await Me(after, token, 401);   // idle 2 s since a use under the new timeout
    }

    [Fact]
    public async Task A_busy_session_stays_alive_under_an_idle_timeout_shorter_than_the_local_cache()
    {
        // A use served from the node's copy does not slide the session in Redis: trusted for the
        // whole local cache, the copy outlived the session there, and the next lookup found it gone.
        await using var app = await services.StartAppAsync(settings: new Dictionary<string, string?>
        {
            ["Sessions:IdleTimeout"] = "00:00:02",
            ["Sessions:LocalCache"] = "00:00:03",
        });
        var token = await app.NewUserTokenAsync();
        for (var i = 0; i < 12; i++)
        {
            await Task.Delay(500);
            await Me(app, token, 200);
        }
    }

    [Fact]
    public async Task A_session_dies_at_its_absolute_lifetime_however_busy()
    {
        await using var app = await services.StartAppAsync(settings: new Dictionary<string, string?>
        {
            ["Sessions:IdleTimeout"] = "01:00:00",
            ["Sessions:AbsoluteLifetime"] = "00:00:04",
        });
        var name = Api.UniqueName();
        await app.RegisterAsync(name);
        var loginStarted = DateTime.UtcNow;
        var token = await app.LoginAsync(name);
        var loginDone = DateTime.UtcNow;   // the session was created between loginStarted and now
        while (DateTime.UtcNow - loginStarted < TimeSpan.FromSeconds(2))
        {
            await Me(app, token, 200);
            await Task.Delay(250);
        }
        await Task.Delay(TimeSpan.FromSeconds(4.5) - (DateTime.UtcNow - loginDone));
        await Me(app, token, 401);
    }
}
