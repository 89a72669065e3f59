using Ams.Tests.Support;

namespace Ams.Tests.Messaging;

/// <summary>Two app instances on the same MariaDB and Redis see one set of conversations.</summary>
public sealed class MultiNodeTests(Services services) : IClassFixture<Services>
{
    [Fact]
    public async Task Two_nodes_see_the_same_conversations_messages_and_read_state()
    {
        var node1 = await services.AppAsync();
        await using var node2 = await services.StartAppAsync();
        var alice = await node1.MemberAsync("na");
        var bob = await node1.MemberAsync("nb");
        var carol = await node1.MemberAsync("nc");

        var group = await node1.GroupAsync(alice, "across nodes", bob);
        var first = await node1.SendAsync(alice, group.Id(), "sent on node 1");

        var onNode2 = await node2.HistoryAsync(bob, group.Id());
        Chat.SameJson(first, Assert.Single(onNode2), "node 2's history");
        Assert.Equal(1, (await node2.ConversationAsync(bob, group.Id())).Unread());

        await node2.PostAsync($"/api/conversations/{Chat.Esc(group.Id())}/members", new { username = carol.Name }, bob.Token, 200);
        var reply = await node2.SendAsync(bob, group.Id(), "answered on node 2");
        await node2.PostAsync($"/api/conversations/{Chat.Esc(group.Id())}/read", new { upTo = reply.Id() }, bob.Token, 204);

        var alicesView = (await node1.InboxEntryAsync(alice, group.Id()))!;
        Chat.SameJson(reply, alicesView["lastMessage"], "alice's lastMessage on node 1");
        Assert.Equal(1, alicesView.Unread());
        Assert.Equal(0, (await node1.ConversationAsync(bob, group.Id())).Unread());
        Assert.Equal(Chat.Names(alice, bob, carol), (await node1.ConversationAsync(alice, group.Id())).MemberNames());
        Assert.Equal(new[] { "answered on node 2" }, Chat.Bodies(await node1.HistoryAsync(carol, group.Id())));
        Assert.Equal(new[] { "sent on node 1", "answered on node 2" }, Chat.Bodies(await node1.HistoryAsync(alice, group.Id())));

        // The direct conversation opened on one node is the one the other node finds.
        var direct = await node1.DirectAsync(alice, carol);
        Assert.Equal(direct.Id(), (await node2.OpenAsync(carol, null, 200, alice)).Id());
        Assert.Equal(direct.Id(), (await node2.SendToAsync(alice, carol, "hello from node 2"))["conversationId"].Str());
    }

    [Fact]
    public async Task Simultaneous_first_messages_from_both_sides_on_two_nodes_open_one_direct_conversation()
    {
        var node1 = await services.AppAsync();
        await using var node2 = await services.StartAppAsync();
        for (var round = 0; round < 5; round++)
        {
            var alice = await node1.MemberAsync("ra");
            var bob = await node1.MemberAsync("rb");
            var sends = await Task.WhenAll(
                node1.SendToAsync(alice, bob, "hi bob"),
                node2.SendToAsync(bob, alice, "hi alice"),
                node1.SendToAsync(bob, alice, "hi again"),
                node2.SendToAsync(alice, bob, "hello"));
            var ids = sends.Select(m => m["conversationId"].Str()).Distinct().ToArray();
            Assert.True(ids.Length == 1, $"round {round}: {ids.Length} direct conversations for one pair: {string.Join(", ", ids)}");
            Assert.Single(await node1.InboxAsync(alice));
            Assert.Equal(4, (await node2.HistoryAsync(bob, ids[0])).Count);
        }
    }
}
