using Ams.Testing;
using Ams.Tests.Messaging;
using Ams.Tests.Support;

namespace Ams.Tests.Platform;

/// <summary>A master, a replica and three sentinels for one test class.</summary>
public sealed class RedisSentinelFixture : IAsyncLifetime
{
    public RedisSentinel Redis { get; private set; } = null!;

    public async Task InitializeAsync() => Redis = await RedisSentinel.StartAsync();

    public async Task DisposeAsync() => await Redis.DisposeAsync();
}

/// <summary>
/// AMS through Redis Sentinel (<c>serviceName=</c> in the connection string): the client asks the
/// sentinels for the master, and follows them when they promote the replica.
/// </summary>
public sealed class RedisSentinelTests(Services services, RedisSentinelFixture sentinel) : IClassFixture<Services>, IClassFixture<RedisSentinelFixture>
{
    [Fact]
    public async Task Sessions_sends_and_live_events_carry_on_when_the_sentinels_replace_a_dead_master()
    {
        IEnumerable<KeyValuePair<string, string?>> settings = [new("Redis:Replicas", "1")];
        await using var node1 = await services.StartAppAsync(redis: sentinel.Redis.ConnectionString, settings: settings);
        await using var node2 = await services.StartAppAsync(redis: sentinel.Redis.ConnectionString, settings: settings);
        var alice = await node1.MemberAsync("sa");
        var bob = await node1.MemberAsync("sb");
        var direct = (await node1.DirectAsync(alice, bob)).Id();
        await using var stream = await SseClient.OpenAsync(node2, bob.Token);
        await node1.SendAsync(alice, direct, "before the failover");
        Assert.Contains("before the failover", (await stream.NextOfAsync("message")).Data);

        await sentinel.Redis.KillMasterAsync();

        // Both sessions were on the replica (Redis__Replicas=1) and work on both nodes again once
        // the clients follow the sentinels to it; a send goes through, and reaches the stream that
        // stayed open on the other node (live, or replayed when its subscription is made again).
        var deadline = DateTime.UtcNow.AddSeconds(20);
        string sent;
        while (true)
        {
            var result = await node1.Scenario(s => { s.Post.Json(new { conversationId = direct, body = "after the failover" }).ToUrl("/api/messages"); s.WithBearerToken(alice.Token); s.IgnoreStatusCode(); });
            if (result.Status() == 201)
            {
                sent = (await result.JsonAsync()).Id();
                break;
            }
            Assert.True(result.Status() == 503 && DateTime.UtcNow < deadline, $"a send after the failover answered {result.Status()}");
            await Task.Delay(200);
        }
        Assert.Equal(sent, JsonNode.Parse((await stream.NextOfAsync("message")).Data)!.Id());
        await node2.Scenario(s => { s.Get.Url("/api/me"); s.WithBearerToken(bob.Token); s.StatusCodeShouldBe(200); });
        await node2.Scenario(s => { s.Get.Url("/api/me"); s.WithBearerToken(alice.Token); s.StatusCodeShouldBe(200); });
    }
}
