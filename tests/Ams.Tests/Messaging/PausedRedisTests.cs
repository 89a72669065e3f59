using System.Text.Json.Nodes;
using System.Diagnostics;
using Ams.Infrastructure;
using Ams.Testing;
using Ams.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Ams.Tests.Messaging;

/// <summary>
/// A Redis that hangs (SIGSTOP: its connections stay open, nothing is answered) must not hold up
/// sends: the Redis calls on the send path share a bound, then fail fast until Redis answers, and
/// the live events that could not go out are published once it does.
/// </summary>
public sealed class PausedRedisTests(Services services) : IClassFixture<Services>
{
    [Fact]
    public async Task Sends_during_a_Redis_pause_answer_at_once_and_reach_live_streams_on_both_nodes_after_it_resumes()
    {
        await using var redis = await RedisServer.StartAsync();
        // The production timeouts (5 s per call): the bound must come from AMS, not from the test's settings.
        var logs = new CapturedLogs();
        await using var node1 = await services.StartAppAsync(redis: redis.ConnectionString, services: s => s.AddSingleton<ILoggerProvider>(logs));
        await using var node2 = await services.StartAppAsync(redis: redis.ConnectionString);
        var alice = await node1.MemberAsync("pra");
        var bob = await node1.MemberAsync("prb");
        var direct = await node1.DirectAsync(alice, bob);
        await using var stream = await SseClient.OpenAsync(node2, bob.Token);
        await node1.SendAsync(alice, direct.Id(), "before the pause");
        Assert.Equal("before the pause", JsonNode.Parse((await stream.NextOfAsync("message")).Data)!["body"].Str());

        var sent = new List<string>();
        TimeSpan elapsed;
        redis.Pause();
        try
        {
            var watch = Stopwatch.StartNew();
            for (var i = 0; i < 6; i++) sent.Add((await node1.SendAsync(alice, direct.Id(), $"paused {i}")).Id());
            elapsed = watch.Elapsed;
        }
        finally
        {
            redis.Resume();
        }
        // Before: three 5 s timeouts in series for each send (session, throttle, publish), 90 s here.
        // Now: one bound of 1 s (RedisCircuit.Budget) for the first, nothing for the rest. The margin
        // is for a loaded machine; a budget of 4 s would not fit in it.
        Assert.True(elapsed < RedisCircuit.Budget + TimeSpan.FromSeconds(2.5), $"six sends during the pause took {elapsed.TotalSeconds:F1} s");

        // Every one reaches Bob's open stream on the other node, in order, once.
        var received = new List<string>();
        string? lastId = null;
        while (received.Count < sent.Count)
        {
            var next = await stream.NextAsync(TimeSpan.FromSeconds(20));
            Assert.True(next is not null, $"got {received.Count} of {sent.Count} after the pause");
            lastId = next!.Id ?? lastId;
            if (next.Event == "message") received.Add(JsonNode.Parse(next.Data)!.Id());
        }
        Assert.Equal(sent, received);
        // The log says so once when they start to wait and once when they are out, not once per send.
        Assert.Single(logs.Lines, line => line.Contains("event not published", StringComparison.Ordinal));
        await Eventually.TrueAsync(() => logs.Lines.Any(line => line.Contains("Published 6 live events that waited for Redis", StringComparison.Ordinal)));
        // And how long Redis did not answer.
        Assert.Contains(logs.Lines, line => System.Text.RegularExpressions.Regex.IsMatch(line, @"Redis answers again; calls go through \(they failed fast for \d+\.\d s\)"));
        // The late and the republished copies of an event are the same event: none is written twice.
        try
        {
            while (await stream.NextAsync(TimeSpan.FromSeconds(2)) is { } extra) Assert.NotEqual("message", extra.Event);
        }
        catch (OperationCanceledException)
        {
            // Quiet for 2 s: nothing more came.
        }

        // And sending works normally again, live (a new stream: the quiet wait above ended that one).
        await using var resumed = await SseClient.OpenAsync(node2, bob.Token, lastId);
        var after = await node1.SendAsync(alice, direct.Id(), "after the pause");
        Assert.Equal(after.Id(), JsonNode.Parse((await resumed.NextOfAsync("message")).Data)!.Id());
    }

    [Fact]
    public async Task A_request_that_needs_Redis_just_as_it_resumes_waits_for_the_circuits_next_probe_rather_than_failing()
    {
        await using var redis = await RedisServer.StartAsync();
        await using var node = await services.StartAppAsync(redis: redis.ConnectionString);
        var circuit = node.Services.GetRequiredService<RedisCircuit>();
        redis.Pause();
        Task<bool> waiting;
        try
        {
            await Assert.ThrowsAnyAsync<Exception>(() => circuit.CallAsync(db => db.PingAsync()));
            Assert.True(circuit.IsOpen);
            // A session another node issued after the resume: this node, its circuit still open,
            // waits for its next probe (every 250 ms) instead of answering 503 at once.
            waiting = circuit.ReconnectedWithinAsync(TimeSpan.FromSeconds(2));
            await Task.Delay(100);
            Assert.False(waiting.IsCompleted);
        }
        finally
        {
            redis.Resume();
        }
        Assert.True(await waiting);
        Assert.False(circuit.IsOpen);
    }

    [Fact]
    public async Task Inboxes_conversations_and_new_streams_during_a_Redis_pause_answer_at_once_with_everyone_offline()
    {
        await using var redis = await RedisServer.StartAsync();
        await using var node = await services.StartAppAsync(redis: redis.ConnectionString);
        var alice = await node.MemberAsync("pia");
        var bob = await node.MemberAsync("pib");
        var direct = (await node.DirectAsync(alice, bob)).Id();
        await using var bobsStream = await SseClient.OpenAsync(node, bob.Token);
        bool BobOnline(JsonObject conversation) =>
            conversation["members"]!.AsArray().Single(m => m!["username"].Str() == bob.Name)!["online"]!.GetValue<bool>();
        await Eventually.TrueAsync(async () => BobOnline(await node.ConversationAsync(alice, direct)), TimeSpan.FromSeconds(5));

        TimeSpan elapsed;
        redis.Pause();
        try
        {
            var watch = Stopwatch.StartNew();
            for (var i = 0; i < 3; i++)
            {
                Assert.Contains(await node.InboxAsync(alice), c => c!.Id() == direct);
                Assert.False(BobOnline(await node.ConversationAsync(alice, direct)));   // presence is best effort
                await using var stream = await SseClient.OpenAsync(node, alice.Token);
                Assert.Equal(200, (int)stream.Response.StatusCode);
            }
            elapsed = watch.Elapsed;
        }
        finally
        {
            redis.Resume();
        }
        // Before: each presence read or mark waited out the client's 5 s timeout, nine of them here.
        Assert.True(elapsed < RedisCircuit.Budget + TimeSpan.FromSeconds(2.5), $"three inboxes, conversations and streams during the pause took {elapsed.TotalSeconds:F1} s");
        await Eventually.TrueAsync(async () => BobOnline(await node.ConversationAsync(alice, direct)), TimeSpan.FromSeconds(5));
    }
}
