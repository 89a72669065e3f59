using Ams.Tests.Support;

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
}
