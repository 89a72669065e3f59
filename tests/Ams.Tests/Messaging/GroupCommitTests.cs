using System.Globalization;
using System.Text.Json.Nodes;
using Ams.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using MySqlConnector;

namespace Ams.Tests.Messaging;

/// <summary>
/// Concurrent sends share transactions (Features/SendMessage/GroupCommit.cs); each one must still
/// be stored once, in order, with one event per member numbered without gaps or repeats.
/// </summary>
[Collection(ServicesCollection.Name)]
public sealed class GroupCommitTests(Services services)
{
    [Fact]
    public async Task Concurrent_sends_share_transactions_yet_every_message_and_event_is_stored_once_and_in_order()
    {
        var logs = new CapturedLogs();
        await using var app = await services.StartAppAsync(
            settings: new Dictionary<string, string?>
            {
                ["Logging:LogLevel:Ams.Features.SendMessage.GroupCommit"] = "Debug",
                ["Messaging:MaxSends"] = "1000",
            },
            services: s => s.AddSingleton<ILoggerProvider>(logs));
        var members = await app.MembersAsync(4, "gc");
        var outsider = await app.MemberAsync("go");
        var group = await app.GroupAsync(members[0], "batched", members[1..]);
        var direct = await app.DirectAsync(members[0], members[1]);
        await using var watcher = await SseClient.OpenAsync(app, members[3].Token);

        const int each = 12;
        var groupSends = members.Select((member, m) => Task.Run(async () =>
        {
            var ids = new List<string>();
            for (var i = 0; i < each; i++) ids.Add((await app.SendAsync(member, group.Id(), $"g{m} {i}")).Id());
            return ids;
        })).ToArray();
        var directSends = members[..2].Select((member, m) => Task.Run(async () =>
        {
            for (var i = 0; i < each / 2; i++) await app.SendAsync(member, direct.Id(), $"d{m} {i}");
        })).ToArray();
        var outsiderSends = Enumerable.Range(0, 5).Select(i => Task.Run(async () =>
            (await app.PostAsync("/api/messages", new { conversationId = group.Id(), body = $"outsider {i}" }, outsider.Token, null)).Status()))
            .ToArray();
        await Task.WhenAll(directSends);
        var sentIds = (await Task.WhenAll(groupSends)).SelectMany(ids => ids).ToHashSet();
        Assert.All(await Task.WhenAll(outsiderSends), status => Assert.Equal(404, status));

        var history = await app.HistoryAsync(members[3], group.Id());
        Assert.Equal(4 * each, history.Count);
        Assert.Equal(sentIds.Order(), history.Select(m => m.Id()).Order());
        var ids = history.Select(m => long.Parse(m.Id(), CultureInfo.InvariantCulture)).ToList();
        Assert.Equal(ids.Order(), ids);
        var sentAt = history.Select(m => DateTimeOffset.Parse(m["sentAt"].Str(), CultureInfo.InvariantCulture)).ToList();
        Assert.Equal(sentAt.Order(), sentAt);
        for (var m = 0; m < members.Length; m++)
            Assert.Equal(Enumerable.Range(0, each).Select(i => $"g{m} {i}"),
                history.Where(message => message["sender"]!["username"].Str() == members[m].Name).Select(message => message["body"].Str()));
        Assert.Equal(6 * 2, (await app.HistoryAsync(members[1], direct.Id())).Count);
        Assert.Equal(history[^1].Id(), (await app.ConversationAsync(members[2], group.Id()))["lastMessage"]!.Id());

        // The watcher's events: one per message, numbered consecutively in message order; and
        // replaying from before the first gives the same again.
        var live = new List<(long Seq, string Message)>();
        while (live.Count < history.Count)
        {
            var next = await watcher.NextAsync() ?? throw new Xunit.Sdk.XunitException($"the stream ended after {live.Count} events");
            if (next.Event == "message") live.Add((long.Parse(next.Id!, CultureInfo.InvariantCulture), JsonNode.Parse(next.Data)!.Id()));
        }
        Assert.Equal(Enumerable.Range(0, live.Count).Select(i => live[0].Seq + i), live.Select(e => e.Seq));
        Assert.Equal(history.Select(m => m.Id()), live.Select(e => e.Message));
        Assert.True(await watcher.QuietForAsync(TimeSpan.FromMilliseconds(500)), "more events than messages");
        await using var replay = await SseClient.OpenAsync(app, members[3].Token, (live[0].Seq - 1).ToString(CultureInfo.InvariantCulture));
        var replayed = new List<(long Seq, string Message)>();
        while (replayed.Count < live.Count)
        {
            var next = await replay.NextAsync() ?? throw new Xunit.Sdk.XunitException($"the replay ended after {replayed.Count} events");
            if (next.Event == "message") replayed.Add((long.Parse(next.Id!, CultureInfo.InvariantCulture), JsonNode.Parse(next.Data)!.Id()));
        }
        Assert.Equal(live, replayed);

        var batches = logs.Lines.Where(l => l.Contains("Stored a batch of", StringComparison.Ordinal))
            .Select(l => int.Parse(l.Split("batch of ")[1].Split(' ')[0], CultureInfo.InvariantCulture)).ToList();
        Assert.True(batches.Max() > 1, $"no send shared a transaction: {string.Join(",", batches)}");
        Assert.Equal(4 * each + 2 * (each / 2) + 5, batches.Sum());
    }

    [Fact]
    public async Task A_send_locks_only_the_conversations_in_its_batch()
    {
        var app = await services.AppAsync();
        var alice = await app.MemberAsync("la");
        var bob = await app.MemberAsync("lb");
        var carol = await app.MemberAsync("lc");
        var busy = await app.DirectAsync(alice, bob);
        var other = await app.DirectAsync(alice, carol);
        await using var connection = new MySqlConnection(services.MariaDb.ConnectionString("ams"));
        await connection.OpenAsync();
        await using var transaction = await connection.BeginTransactionAsync();
        await using (var lockBusy = new MySqlCommand("SELECT id FROM conversations WHERE id = @id FOR UPDATE", connection, transaction))
        {
            lockBusy.Parameters.AddWithValue("@id", long.Parse(busy.Id(), CultureInfo.InvariantCulture));
            await lockBusy.ExecuteScalarAsync();
        }

        var send = app.SendAsync(alice, other.Id(), "not held up");
        Assert.Same(send, await Task.WhenAny(send, Task.Delay(TimeSpan.FromSeconds(10))));
        Assert.Equal("not held up", (await send)["body"].Str());

        var waiting = app.SendAsync(bob, busy.Id(), "after the lock");
        Assert.NotSame(waiting, await Task.WhenAny(waiting, Task.Delay(TimeSpan.FromMilliseconds(300))));
        await transaction.RollbackAsync();
        Assert.Equal("after the lock", (await waiting)["body"].Str());
    }
}
