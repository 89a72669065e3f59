using Ams.Tests.Support;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;

namespace Ams.Tests.Messaging;

/// <summary>POST /api/messages is throttled per sender: 429 with Retry-After.</summary>
public sealed class SendThrottleTests(Services services) : IClassFixture<Services>
{
    [Fact]
    public async Task A_burst_of_sends_from_one_user_is_eventually_429_with_Retry_After_and_nothing_throttled_is_stored()
    {
        var app = await services.AppAsync();
        var spammer = await app.MemberAsync("ts");
        var bob = await app.MemberAsync("tb");
        var direct = await app.DirectAsync(spammer, bob);

        var accepted = 0;
        IScenarioResult? throttled = null;
        for (var i = 0; i < 200 && throttled is null; i++)
        {
            var result = await app.PostAsync("/api/messages", new { conversationId = direct.Id(), body = $"spam {i}" }, spammer.Token, null);
            switch (result.Status())
            {
                case 201: accepted++; break;
                case 429: throttled = result; break;
                default: Assert.Fail($"send {i}: expected 201 or 429, got {result.Status()}: {await result.ReadAsTextAsync()}"); break;
            }
        }
        Assert.True(throttled is not null, $"200 sends in a burst from one user were all accepted: POST /api/messages has no send throttle (or its limit is above 200)");
        Assert.True(accepted > 0, "the very first send was throttled");

        await throttled!.ProblemAsync(429);
        var retryAfter = throttled.Context.Response.Headers.RetryAfter.ToString();
        Assert.True(int.TryParse(retryAfter, out var seconds) && seconds >= 1, $"Retry-After should be whole seconds >= 1, was '{retryAfter}'");
        Assert.InRange(seconds, 1, 3600);

        // Still throttled right after, by conversationId and by `to` alike.
        await (await app.PostAsync("/api/messages", new { conversationId = direct.Id(), body = "again" }, spammer.Token, 429)).ProblemAsync(429);
        await (await app.PostAsync("/api/messages", new { to = bob.Name, body = "again" }, spammer.Token, 429)).ProblemAsync(429);

        // Only the accepted messages exist.
        var history = await app.HistoryAsync(bob, direct.Id());
        Assert.Equal(accepted, history.Count);
        Assert.Equal(Enumerable.Range(0, accepted).Select(i => $"spam {i}"), Chat.Bodies(history));

        // The throttle is the sender's, not everyone's: the other member can still answer.
        await app.PostAsync("/api/messages", new { conversationId = direct.Id(), body = "please stop" }, bob.Token, 201);
    }

    static KeyValuePair<string, string?>[] Limit(int maxSends) => [new("Messaging:MaxSends", $"{maxSends}"), new("Messaging:Window", "00:05:00")];

    static async Task<int> AcceptedAsync(IEnumerable<Task<IScenarioResult>> sends)
    {
        var results = await Task.WhenAll(sends);
        Assert.All(results, r => Assert.True(r.Status() is 201 or 429, $"expected 201 or 429, got {r.Status()}"));
        return results.Count(r => r.Status() == 201);
    }

    [Fact]
    public async Task One_node_lets_exactly_the_limit_through_whether_sends_come_one_by_one_or_all_at_once()
    {
        await using var app = await services.StartAppAsync(settings: Limit(10));
        var (one, all, bob) = (await app.MemberAsync("t1"), await app.MemberAsync("t2"), await app.MemberAsync("t3"));
        var (direct1, direct2) = ((await app.DirectAsync(one, bob)).Id(), (await app.DirectAsync(all, bob)).Id());

        var oneByOne = 0;
        for (var i = 0; i < 25; i++)
            if ((await app.PostAsync("/api/messages", new { conversationId = direct1, body = $"one {i}" }, one.Token, null)).Status() == 201) oneByOne++;
        Assert.Equal(10, oneByOne);

        // One send first, so the node knows the count and the burst could take the path that does not wait.
        await app.PostAsync("/api/messages", new { conversationId = direct2, body = "first" }, all.Token, 201);
        var atOnce = await AcceptedAsync(Enumerable.Range(0, 39).Select(i =>
            app.PostAsync("/api/messages", new { conversationId = direct2, body = $"all {i}" }, all.Token, null)));
        Assert.Equal(9, atOnce);
        Assert.Equal(10, (await app.HistoryAsync(bob, direct2)).Count);
    }

    [Fact]
    public async Task Two_nodes_share_the_limit_one_by_one_exactly_and_all_at_once_with_at_most_one_send_more_per_node()
    {
        await using var node1 = await services.StartAppAsync(settings: Limit(10));
        await using var node2 = await services.StartAppAsync(settings: Limit(10));
        var (one, all, bob) = (await node1.MemberAsync("u1"), await node1.MemberAsync("u2"), await node1.MemberAsync("u3"));
        var (direct1, direct2) = ((await node1.DirectAsync(one, bob)).Id(), (await node1.DirectAsync(all, bob)).Id());

        var alternating = 0;
        for (var i = 0; i < 25; i++)
            if ((await (i % 2 == 0 ? node1 : node2).PostAsync("/api/messages", new { conversationId = direct1, body = $"one {i}" }, one.Token, null)).Status() == 201)
                alternating++;
        Assert.Equal(10, alternating);

        await node1.PostAsync("/api/messages", new { conversationId = direct2, body = "first" }, all.Token, 201);
        await node2.PostAsync("/api/messages", new { conversationId = direct2, body = "second" }, all.Token, 201);
        var atOnce = await AcceptedAsync(Enumerable.Range(0, 38).Select(i =>
            (i % 2 == 0 ? node1 : node2).PostAsync("/api/messages", new { conversationId = direct2, body = $"all {i}" }, all.Token, null)));
        Assert.InRange(atOnce + 2, 10, 12);
    }

    [Fact]
    public async Task A_send_far_below_the_limit_does_not_wait_for_Redis_one_with_no_count_yet_or_near_the_limit_does()
    {
        await using var app = await services.StartAppAsync(settings: Limit(4));
        var throttle = app.Services.GetRequiredService<Ams.Features.SendMessage.Throttle>();
        Task<TimeSpan?> Send(long user) => throttle.TrySendAsync(new DefaultHttpContext(), user);
        const long far = 9_000_001, fresh = 9_000_002, near = 9_000_003;
        Assert.Null(await Send(far));
        Assert.Null(await Send(near));
        Assert.Null(await Send(near));

        services.Redis.Pause();
        Task<TimeSpan?> farSend, freshSend, nearSend;
        try
        {
            (farSend, freshSend, nearSend) = (Send(far), Send(fresh), Send(near));
            Assert.True(farSend.IsCompleted, "a second send of four allowed waited for Redis");
            Assert.False(freshSend.IsCompleted, "the first send of a window was let through before Redis counted it");
            Assert.False(nearSend.IsCompleted, "the third send of four allowed was let through before Redis counted it");
        }
        finally
        {
            services.Redis.Resume();
        }
        Assert.Null(await farSend);
        Assert.Null(await freshSend);
        Assert.Null(await nearSend);
        // Redis counted the send that did not wait: the budget ends where it would have.
        Assert.Null(await Send(far));
        Assert.Null(await Send(far));
        Assert.NotNull(await Send(far));
    }
}
