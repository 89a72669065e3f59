using Ams.Infrastructure.Messaging;
using Ams.Tests.Support;
using Microsoft.Extensions.DependencyInjection;

namespace Ams.Tests.Messaging;

/// <summary>members[].online: a live stream open on any node; a node that stops renewing its marks does not keep users online.</summary>
public sealed class PresenceTests(Services services) : IClassFixture<Services>
{
    static bool Online(JsonNode conversation, Member member) =>
        conversation["members"]!.AsArray().Single(m => m!["username"].Str() == member.Name)!["online"]!.GetValue<bool>();

    static async Task<bool> EventuallyAsync(Func<Task<bool>> condition, TimeSpan within)
    {
        var until = DateTime.UtcNow + within;
        while (true)
        {
            if (await condition()) return true;
            if (DateTime.UtcNow > until) return false;
            await Task.Delay(100);
        }
    }

    [Fact]
    public async Task A_member_is_online_on_every_node_while_a_stream_is_open_on_any_and_offline_once_it_closes()
    {
        var node1 = await services.AppAsync();
        await using var node2 = await services.StartAppAsync();
        var alice = await node1.MemberAsync("la");
        var bob = await node1.MemberAsync("lb");
        var group = await node1.GroupAsync(alice, "presence", bob);
        Assert.False(Online(group, bob));
        Assert.False(Online(group, alice));

        // A stream's headers arrive once its mark is set.
        var stream = await SseClient.OpenAsync(node2, bob.Token);
        await using (var second = await SseClient.OpenAsync(node1, bob.Token))
        {
            foreach (var node in new[] { node1, node2 })
            {
                var view = await node.ConversationAsync(alice, group.Id());
                Assert.True(Online(view, bob));
                Assert.False(Online(view, alice));
                Assert.True(Online((await node.InboxEntryAsync(alice, group.Id()))!, bob));
            }
        }
        // One of his two streams closed: still online through the other node.
        await Task.Delay(300);
        Assert.True(Online(await node1.ConversationAsync(alice, group.Id()), bob));
        await stream.DisposeAsync();
        Assert.True(await EventuallyAsync(async () => !Online(await node1.ConversationAsync(alice, group.Id()), bob), TimeSpan.FromSeconds(5)),
            "bob still online after his last stream closed");
    }

    [Fact]
    public async Task Users_of_a_node_whose_heartbeat_stops_go_offline_when_their_marks_lapse()
    {
        var node1 = await services.AppAsync();
        await using var node2 = await services.StartAppAsync(settings:
            [new("Presence:Heartbeat", "00:00:00.200"), new("Presence:Ttl", "00:00:01")]);
        var alice = await node1.MemberAsync("ka");
        var bob = await node1.MemberAsync("kb");
        var group = await node1.GroupAsync(alice, "dying node", bob);
        await using var stream = await SseClient.OpenAsync(node2, bob.Token);
        Assert.True(await EventuallyAsync(async () => Online(await node1.ConversationAsync(alice, group.Id()), bob), TimeSpan.FromSeconds(2)));
        // Longer than a mark lasts: the heartbeat keeps renewing it.
        await Task.Delay(TimeSpan.FromSeconds(2));
        Assert.True(Online(await node1.ConversationAsync(alice, group.Id()), bob));

        // The node stops renewing (as if its process had died with the stream still "open").
        node2.Services.GetRequiredService<Presence>().Frozen = true;
        Assert.True(await EventuallyAsync(async () => !Online(await node1.ConversationAsync(alice, group.Id()), bob), TimeSpan.FromSeconds(3)),
            "bob stayed online after his node stopped its heartbeat");
    }
}
