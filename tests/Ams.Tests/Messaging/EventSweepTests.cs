using System.Globalization;
using System.Text.Json.Nodes;
using Ams.Tests.Support;
using Microsoft.Extensions.DependencyInjection;

namespace Ams.Tests.Messaging;

/// <summary>The stored events no stream may replay are deleted (Sweeper), and a stream that needs one of them resets.</summary>
public sealed class EventSweepTests(Services services) : IClassFixture<Services>
{
    async Task<long> LatestAsync(Member member) =>
        long.Parse(await services.ScalarAsync($"SELECT seq FROM user_event_seq WHERE user_id = {await services.UserIdAsync(member.Name)}"), CultureInfo.InvariantCulture);

    /// <summary>The member's stored event numbers, lowest first.</summary>
    async Task<long[]> KeptAsync(Member member) =>
        (await services.SqlAsync($"SELECT seq FROM events WHERE user_id = {await services.UserIdAsync(member.Name)} ORDER BY seq"))
        .Split('\n', StringSplitOptions.RemoveEmptyEntries).Skip(1).Select(line => long.Parse(line.Trim(), CultureInfo.InvariantCulture)).ToArray();

    static Task<long> SweepAsync(IAlbaHost app) => app.Services.GetRequiredService<Ams.Features.Events.Sweeper>().SweepAsync();

    static async Task<List<SseEvent>> ReplayedAsync(SseClient stream, int count)
    {
        var events = new List<SseEvent>();
        while (events.Count < count)
        {
            var next = await stream.NextAsync() ?? throw new Xunit.Sdk.XunitException("the stream ended");
            if (next.Id is not null) events.Add(next);
        }
        return events;
    }

    [Fact]
    public async Task A_user_keeps_the_latest_max_replay_events_and_a_node_that_would_replay_more_resets_where_they_were_deleted()
    {
        await using var narrow = await services.StartAppAsync(settings: new Dictionary<string, string?> { ["Events:MaxReplay"] = "3" });
        await using var wide = await services.StartAppAsync(settings: new Dictionary<string, string?> { ["Events:MaxReplay"] = "100" });
        var alice = await wide.MemberAsync("swa");
        var bob = await wide.MemberAsync("swb");
        var direct = await wide.DirectAsync(alice, bob);
        for (var i = 0; i < 6; i++) await wide.SendAsync(alice, direct.Id(), $"old {i}");
        var latest = await LatestAsync(bob);
        Assert.True(latest >= 6);

        Assert.True(await SweepAsync(narrow) >= latest - 3);
        Assert.Equal([latest - 2, latest - 1, latest], await KeptAsync(bob));
        Assert.Equal(3, (await KeptAsync(alice)).Length);
        // Only the replay log is swept: the messages stay.
        Assert.Equal(6, (await wide.HistoryAsync(bob, direct.Id())).Count);
        Assert.Equal(0, await SweepAsync(narrow));

        // The wide node would replay from latest - 3 on: its next event is gone, so it resets.
        await using (var behind = await SseClient.OpenAsync(wide, bob.Token, lastEventId: (latest - 4).ToString(CultureInfo.InvariantCulture)))
        {
            var reset = await behind.NextAsync() ?? throw new Xunit.Sdk.XunitException("the stream ended");
            Assert.Equal("reset", reset.Event);
            Assert.Equal(latest.ToString(CultureInfo.InvariantCulture), reset.Id);
            var sent = await wide.SendAsync(alice, direct.Id(), "live");
            var live = (await ReplayedAsync(behind, 1))[0];
            Assert.Equal("message", live.Event);
            Assert.Equal(sent.Id(), JsonNode.Parse(live.Data)!.Id());
        }
        // Right at the edge, every kept event replays.
        await using var edge = await SseClient.OpenAsync(wide, bob.Token, lastEventId: (latest - 3).ToString(CultureInfo.InvariantCulture));
        var replayed = await ReplayedAsync(edge, 4);
        Assert.Equal(["message", "message", "message", "message"], replayed.Select(e => e.Event));
        Assert.Equal(Enumerable.Range(0, 4).Select(i => (latest - 2 + i).ToString(CultureInfo.InvariantCulture)), replayed.Select(e => e.Id));
    }

    [Fact]
    public async Task Events_older_than_max_replay_age_are_deleted_but_a_users_latest_event_always_stays()
    {
        var app = await services.AppAsync();
        var alice = await app.MemberAsync("aga");
        var bob = await app.MemberAsync("agb");
        var direct = await app.DirectAsync(alice, bob);
        for (var i = 0; i < 4; i++) await app.SendAsync(alice, direct.Id(), $"aged {i}");
        var bobId = await services.UserIdAsync(bob.Name);
        var latest = await LatestAsync(bob);
        // Past the default 30 days, and one day short of it.
        await services.SqlAsync($"UPDATE events SET created_at = created_at - INTERVAL 31 DAY WHERE user_id = {bobId} AND seq <= {latest - 2}");
        await services.SqlAsync($"UPDATE events SET created_at = created_at - INTERVAL 29 DAY WHERE user_id = {bobId} AND seq = {latest - 1}");

        Assert.True(await SweepAsync(app) >= 2);
        Assert.Equal([latest - 1, latest], await KeptAsync(bob));

        await services.SqlAsync($"UPDATE events SET created_at = created_at - INTERVAL 40 DAY WHERE user_id = {bobId}");
        await SweepAsync(app);
        Assert.Equal([latest], await KeptAsync(bob));
        await using (var behind = await SseClient.OpenAsync(app, bob.Token, lastEventId: (latest - 2).ToString(CultureInfo.InvariantCulture)))
        {
            var reset = await behind.NextAsync() ?? throw new Xunit.Sdk.XunitException("the stream ended");
            Assert.Equal("reset", reset.Event);
            Assert.Equal(latest.ToString(CultureInfo.InvariantCulture), reset.Id);
        }
        await using var current = await SseClient.OpenAsync(app, bob.Token, lastEventId: (latest - 1).ToString(CultureInfo.InvariantCulture));
        var last = (await ReplayedAsync(current, 1))[0];
        Assert.Equal(("message", latest.ToString(CultureInfo.InvariantCulture)), (last.Event, last.Id));
    }

    [Fact]
    public async Task The_longest_age_a_century_keeps_events_for_ever_in_effect()
    {
        await using var app = await services.StartAppAsync(settings: new Dictionary<string, string?> { ["Events:MaxReplayAge"] = "36500.00:00:00" });
        var alice = await app.MemberAsync("eva");
        var bob = await app.MemberAsync("evb");
        var direct = await app.DirectAsync(alice, bob);
        for (var i = 0; i < 3; i++) await app.SendAsync(alice, direct.Id(), $"kept {i}");
        await services.SqlAsync($"UPDATE events SET created_at = '1970-01-01' WHERE user_id = {await services.UserIdAsync(bob.Name)}");
        await SweepAsync(app);
        Assert.Equal(3, (await KeptAsync(bob)).Length);
    }

    [Fact]
    public async Task The_sweep_goes_on_past_its_first_round_of_users_and_its_first_delete()
    {
        var app = await services.AppAsync();
        // 600 users without events first (more than a round), then one with 2,500 events, all old: more than one delete.
        const long first = 9_000_000_000;
        await services.SqlAsync($"""
            INSERT INTO user_event_seq (user_id, seq) SELECT {first} + seq, 0 FROM seq_1_to_600;
            INSERT INTO user_event_seq (user_id, seq) VALUES ({first + 601}, 2500);
            INSERT INTO events (user_id, seq, kind, conversation_id, subject_id, actor_id, created_at)
                SELECT {first + 601}, seq, 'message', 1, 1, 1, UTC_TIMESTAMP(3) - INTERVAL 60 DAY FROM seq_1_to_2500;
            """);
        Assert.True(await SweepAsync(app) >= 2499);
        Assert.Equal("2500", await services.ScalarAsync($"SELECT GROUP_CONCAT(seq) FROM events WHERE user_id = {first + 601}"));
    }
}
