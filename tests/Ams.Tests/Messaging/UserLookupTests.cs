using Ams.Tests.Support;

namespace Ams.Tests.Messaging;

/// <summary>GET /api/users?prefix=..: a bounded prefix search, never the whole user base, throttled.</summary>
public sealed class UserLookupTests(Services services) : IClassFixture<Services>
{
    [Fact]
    public async Task A_prefix_finds_matching_usernames_in_order_at_most_limit_and_wildcards_match_literally()
    {
        var app = await services.AppAsync();
        var stem = "q" + Guid.NewGuid().ToString("N")[..6];
        var me = await app.MemberAsync("lookup");
        foreach (var (suffix, display) in new[] { ("_c", "Carol"), ("_a", "Alice"), ("_b", "Bob"), ("xa", "Not a wildcard match") })
            await app.RegisterAsync(stem + suffix, displayName: display);

        var found = (await (await app.GetAsync($"/api/users?prefix={stem.ToUpperInvariant()}_", me.Token, 200)).JsonAsync()).AsArray();
        Chat.SameJson(new JsonArray(
            new JsonObject { ["username"] = stem + "_a", ["displayName"] = "Alice" },
            new JsonObject { ["username"] = stem + "_b", ["displayName"] = "Bob" },
            new JsonObject { ["username"] = stem + "_c", ["displayName"] = "Carol" }), found, "the lookup");
        var two = (await (await app.GetAsync($"/api/users?prefix={stem}&limit=2", me.Token, 200)).JsonAsync()).AsArray();
        Assert.Equal(new[] { stem + "_a", stem + "_b" }, two.Select(u => u!["username"].Str()));
        Assert.Equal(4, (await (await app.GetAsync($"/api/users?prefix={stem}&limit=20", me.Token, 200)).JsonAsync()).AsArray().Count);
        Assert.Empty((await (await app.GetAsync("/api/users?prefix=zz-nobody-here", me.Token, 200)).JsonAsync()).AsArray());
    }

    [Fact]
    public async Task Short_or_odd_prefixes_and_limits_are_400_strangers_401_and_too_many_lookups_429()
    {
        await using var app = await services.StartAppAsync(settings: [new("Users:MaxLookups", "3")]);
        var me = await app.MemberAsync("lk");
        foreach (var query in new[] { "", "?prefix=", "?prefix=a", "?prefix=%25%25", "?prefix=a%25", "?prefix=ab%20", "?prefix=" + new string('a', 33),
            "?prefix=ab&limit=0", "?prefix=ab&limit=21", "?prefix=ab&limit=x", "?prefix=ab&prefix=cd", "?prefix=%C0%AF%C0%AF" })
        {
            var problem = await (await app.GetAsync("/api/users" + query, me.Token, 400)).ProblemAsync(400);
            Assert.NotEmpty(Api.ErrorNames(problem));
        }
        await app.GetAsync("/api/users?prefix=ab", null, 401);
        for (var i = 0; i < 3; i++) await app.GetAsync("/api/users?prefix=ab", me.Token, 200);
        var throttled = await app.GetAsync("/api/users?prefix=ab", me.Token, 429);
        await throttled.ProblemAsync(429);
        Assert.True(int.Parse(throttled.Context.Response.Headers.RetryAfter.ToString()) >= 1);
    }
}
