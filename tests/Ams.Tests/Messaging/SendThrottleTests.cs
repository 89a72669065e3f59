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

    [Fact]
    public async Task A_node_that_had_not_heard_of_another_nodes_sends_lets_one_send_more_through_then_waits_for_Redis()
    {
        await using var node1 = await services.StartAppAsync(settings: Limit(10));
        await using var node2 = await services.StartAppAsync(settings: Limit(10));
        var (alice, bob) = (await node1.MemberAsync("e1"), await node1.MemberAsync("e2"));
        var direct = (await node1.DirectAsync(alice, bob)).Id();
        async Task<int> SendAsync(IAlbaHost node, int i) =>
            (await node.PostAsync("/api/messages", new { conversationId = direct, body = $"edge {i}" }, alice.Token, null)).Status();

        Assert.Equal(201, await SendAsync(node1, 0));            // node 1 knows a count of 1
        for (var i = 1; i < 10; i++) Assert.Equal(201, await SendAsync(node2, i));
        Assert.Equal(429, await SendAsync(node2, 10));           // node 2 knows the limit is reached
        Assert.Equal(201, await SendAsync(node1, 11));           // node 1 still thinks 1 of 10: the one more
        Assert.Equal(429, await SendAsync(node1, 12));           // and now it has heard
        Assert.Equal(11, (await node1.HistoryAsync(bob, direct)).Count);
    }

    static KeyValuePair<string, string?>[] ShortWindow(int maxSends, int milliseconds) =>
        [new("Messaging:MaxSends", $"{maxSends}"), new("Messaging:Window", TimeSpan.FromMilliseconds(milliseconds).ToString("c"))];

    [Fact]
    public async Task A_new_window_starts_from_Redis_count_and_users_two_windows_quiet_are_forgotten()
    {
        await using var app = await services.StartAppAsync(settings: ShortWindow(4, 1000));
        var throttle = app.Services.GetRequiredService<Ams.Features.SendMessage.Throttle>();
        Task<TimeSpan?> Send(long user) => throttle.TrySendAsync(new DefaultHttpContext(), user);
        const long user = 9_100_001;
        for (var i = 0; i < 4; i++) Assert.Null(await Send(user));
        Assert.NotNull(await Send(user));
        await Task.Delay(1100);
        Assert.Null(await Send(user));                           // the new window's first send waits for its count

        services.Redis.Pause();
        Task<TimeSpan?> next;
        try
        {
            next = Send(user);
            Assert.True(next.IsCompleted, "the second send of a new window waited: the last window's count was kept");
        }
        finally
        {
            services.Redis.Resume();
        }
        Assert.Null(await next);

        for (var other = 9_100_002L; other < 9_100_010; other++) Assert.Null(await Send(other));
        Assert.True(throttle.Remembered >= 9, $"{throttle.Remembered} users remembered");
        await Task.Delay(TimeSpan.FromMilliseconds(2 * 1000 + 300));
        Assert.Null(await Send(9_100_100));
        Assert.Equal(1, throttle.Remembered);
    }

    [Fact]
    public async Task After_a_count_Redis_did_not_answer_the_next_send_waits_for_one()
    {
        await using var app = await services.StartAppAsync(settings: Limit(10));
        var throttle = app.Services.GetRequiredService<Ams.Features.SendMessage.Throttle>();
        Task<TimeSpan?> Send(long user) => throttle.TrySendAsync(new DefaultHttpContext(), user);
        var circuit = app.Services.GetRequiredService<Ams.Infrastructure.RedisCircuit>();
        const long user = 9_200_001;
        Assert.Null(await Send(user));

        services.Redis.Pause();
        try
        {
            var unanswered = Send(user);
            Assert.True(unanswered.IsCompleted, "a send far below the limit waited for Redis");
            await Eventually.TrueAsync(() => circuit.IsOpen, TimeSpan.FromSeconds(10));   // its count ran out of time
        }
        finally
        {
            services.Redis.Resume();
        }
        await Eventually.TrueAsync(() => !circuit.IsOpen, TimeSpan.FromSeconds(10));
        services.Redis.Pause();
        try
        {
            var after = Send(user);
            Assert.False(after.IsCompleted, "after a count Redis did not answer, a send went on without a fresh count");
        }
        finally
        {
            services.Redis.Resume();
        }
    }
}
