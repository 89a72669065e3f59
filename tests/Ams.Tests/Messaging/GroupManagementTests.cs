using Ams.Tests.Attachments;
using Ams.Tests.Support;
using Microsoft.Extensions.DependencyInjection;

namespace Ams.Tests.Messaging;

/// <summary>Owners, renames, removals and leaving, across two nodes; read marks in the conversation.</summary>
public sealed class GroupManagementTests(Services services) : IClassFixture<Services>
{
    static string Url(JsonNode conversation) => $"/api/conversations/{Chat.Esc(conversation.Id())}";
    static string MemberUrl(JsonNode conversation, Member member) => $"{Url(conversation)}/members/{Chat.Esc(member.Name)}";

    /// <summary>Every event until the stream has been quiet for a moment.</summary>
    static async Task<List<SseEvent>> DrainAsync(SseClient stream)
    {
        var events = new List<SseEvent>();
        try
        {
            while (await stream.NextAsync(TimeSpan.FromSeconds(1)) is { } next) events.Add(next);
        }
        catch (OperationCanceledException) { }
        return events;
    }

    [Fact]
    public async Task A_new_group_is_announced_to_every_member_at_once_on_any_node()
    {
        // It appeared in the others' lists only with its first message, or a reload.
        var node1 = await services.AppAsync();
        await using var node2 = await services.StartAppAsync();
        var alice = await node1.MemberAsync("na");
        var bob = await node1.MemberAsync("nb");
        await using var bobs = await SseClient.OpenAsync(node2, bob.Token);
        var group = await node1.GroupAsync(alice, "fresh <group>", bob);
        var told = JsonNode.Parse((await bobs.NextOfAsync("conversation")).Data)!;
        Assert.Equal((group.Id(), "fresh <group>"), (told.Id(), told["title"].Str()));
        Assert.Equal(Chat.Names(alice, bob), told.MemberNames());
    }

    [Fact]
    public async Task The_creator_owns_a_group_and_alone_renames_it_and_every_member_hears_of_it_on_any_node_live_and_replayed()
    {
        var node1 = await services.AppAsync();
        await using var node2 = await services.StartAppAsync();
        var alice = await node1.MemberAsync("ra");
        var bob = await node1.MemberAsync("rb");
        var stranger = await node1.MemberAsync("rs");
        var group = await node1.GroupAsync(alice, "before", bob);
        Assert.Equal(alice.Name, group["owner"].Str());
        Assert.Equal(alice.Name, (await node2.ConversationAsync(bob, group.Id()))["owner"].Str());
        Assert.Equal(alice.Name, (await node2.InboxEntryAsync(bob, group.Id()))!["owner"].Str());
        var direct = await node1.DirectAsync(alice, bob);
        Assert.True(direct.ContainsKey("owner") && direct["owner"] is null);

        await (await node1.PatchAsync(Url(group), new { title = "mine now" }, bob.Token, 403)).ProblemAsync(403);
        await (await node1.PatchAsync(Url(group), new { title = "mine now" }, stranger.Token, 404)).ProblemAsync(404);
        await (await node1.PatchAsync("/api/conversations/abc", new { title = "x" }, alice.Token, 404)).ProblemAsync(404);
        await (await node1.PatchAsync(Url(direct), new { title = "a title" }, alice.Token, 400)).ProblemAsync(400);
        foreach (var body in new[] { """{"title":""}""", """{"title":"   "}""", """{"title":null}""", "{}", """{"title":7}""",
            $$"""{"title":"{{new string('t', 101)}}"}""", """{"title":"a\u0007b"}""", """{"title":"\ud800"}""" })
            await (await node1.PatchRawAsync(Url(group), body, alice.Token, 400)).ProblemAsync(400);
        Assert.Equal("before", (await node1.ConversationAsync(alice, group.Id()))["title"].Str());

        await using var bobs = await SseClient.OpenAsync(node2, bob.Token);
        await using var html = await SseClient.OpenAsync(node2, bob.Token, path: "/events");
        var renamed = (await (await node1.PatchAsync(Url(group), new { title = "after <i>" }, alice.Token, 200)).JsonAsync()).AsObject();
        Assert.Equal("after <i>", renamed["title"].Str());
        Chat.SameJson(await node1.ConversationAsync(alice, group.Id()), renamed, "the rename's answer");

        var live = await bobs.NextOfAsync("conversation");
        Chat.SameJson(await node2.ConversationAsync(bob, group.Id()), JsonNode.Parse(live.Data), "bob's live conversation event");
        var fragment = (await html.NextOfAsync("conversation")).Data;
        Assert.Contains("after &lt;i&gt;", fragment);
        Assert.Contains("data-member=\"true\"", fragment);

        await using var replay = await SseClient.OpenAsync(node1, bob.Token, (long.Parse(live.Id!) - 1).ToString());
        var again = (await replay.NextAsync())!;
        Assert.Equal(("conversation", live.Id), (again.Event, again.Id));
        Chat.SameJson(JsonNode.Parse(live.Data), JsonNode.Parse(again.Data), "the replayed conversation event");
    }

    [Fact]
    public async Task A_removed_member_stops_hearing_of_the_group_at_once_on_every_node_and_loses_it_from_inbox_history_and_attachments()
    {
        var node1 = await services.AppAsync();
        await using var node2 = await services.StartAppAsync();
        var alice = await node1.MemberAsync("xa");
        var bob = await node1.MemberAsync("xb");
        var carol = await node1.MemberAsync("xc");
        var group = await node1.GroupAsync(alice, "removals", bob, carol);
        var file = (await node1.UploadAsync(alice, [1, 2, 3], "plan.txt")).Id();
        var before = await node1.SendWithAsync(alice, group.Id(), "before the removal", file);
        Assert.Equal(200, (await node2.DownloadAsync(carol.Token, file)).Status);
        var direct = await node1.DirectAsync(alice, carol);

        await using var carols = await SseClient.OpenAsync(node2, carol.Token);
        await using var carolsOtherNode = await SseClient.OpenAsync(node1, carol.Token);
        await using var bobs = await SseClient.OpenAsync(node2, bob.Token);

        await (await node1.DeleteAsync(MemberUrl(group, carol), bob.Token, 403)).ProblemAsync(403);
        await (await node1.DeleteAsync(MemberUrl(direct, carol), alice.Token, 400)).ProblemAsync(400);
        await (await node1.DeleteAsync(MemberUrl(direct, alice), alice.Token, 400)).ProblemAsync(400);
        await node1.DeleteAsync($"{Url(group)}/members/nobody-{Guid.NewGuid():N}"[..60], alice.Token, 404);
        await node1.DeleteAsync(MemberUrl(group, carol), null, 401);

        await node1.DeleteAsync(MemberUrl(group, carol), alice.Token, 204);

        // Carol is told, on both nodes, with a view that no longer has her in it and shows nothing of the talk.
        foreach (var stream in new[] { carols, carolsOtherNode })
        {
            var told = JsonNode.Parse((await stream.NextOfAsync("conversation")).Data)!;
            Assert.Equal(group.Id(), told.Id());
            Assert.Equal(Chat.Names(alice, bob), told.MemberNames());
            Assert.Null(told["lastMessage"]);
            Assert.Equal(0, told.Unread());
        }
        var bobTold = JsonNode.Parse((await bobs.NextOfAsync("conversation")).Data)!;
        Assert.Equal(Chat.Names(alice, bob), bobTold.MemberNames());
        Chat.SameJson(before, bobTold["lastMessage"], "bob's view keeps the last message");

        // What is said from now on reaches Bob, not Carol, on either node.
        var after = await node1.SendAsync(alice, group.Id(), "after the removal");
        Assert.Equal(after.Id(), JsonNode.Parse((await bobs.NextOfAsync("message")).Data)!.Id());
        Assert.True(await carols.QuietForAsync(TimeSpan.FromSeconds(1)));
        Assert.True(await carolsOtherNode.QuietForAsync(TimeSpan.FromMilliseconds(300)));

        foreach (var node in new[] { node1, node2 })
        {
            await (await node.GetAsync(Url(group), carol.Token, 404)).ProblemAsync(404);
            await (await node.GetAsync($"{Url(group)}/messages", carol.Token, 404)).ProblemAsync(404);
            Assert.Null(await node.InboxEntryAsync(carol, group.Id()));
            Assert.Equal(404, (await node.DownloadAsync(carol.Token, file)).Status);
            await node.PostAsync("/api/messages", new { conversationId = group.Id(), body = "let me back" }, carol.Token, 404);
            await node.PostAsync($"{Url(group)}/read", new { upTo = after.Id() }, carol.Token, 404);
            await (await node.PatchAsync($"/api/messages/{before.Id()}", new { body = "x" }, carol.Token, 404)).ProblemAsync(404);
        }
        Assert.NotNull(await node2.InboxEntryAsync(carol, direct.Id()));

        // Renamed after she left: a replay from the start skips the group's messages, and the news
        // of the removal tells her only that she is out, nothing of the group as it is now.
        await node1.PatchAsync(Url(group), new { title = "without carol" }, alice.Token, 200);
        await using var replay = await SseClient.OpenAsync(node2, carol.Token, "0");
        var replayed = await DrainAsync(replay);
        // (The news of the group's creation and of the removal.)
        Assert.Equal(new[] { "conversation", "conversation" }, replayed.Select(e => e.Event).ToArray());
        foreach (var news in replayed)
        {
            var replayedView = JsonNode.Parse(news.Data)!;
            Assert.Equal(group.Id(), replayedView.Id());
            Assert.Empty(replayedView["members"]!.AsArray());
            Assert.Null(replayedView["title"]);
            Assert.Null(replayedView["owner"]);
            Assert.DoesNotContain("without carol", news.Data);
        }

        // Removing her again finds no such member; Bob leaves of his own accord and Alice hears of it.
        await (await node1.DeleteAsync(MemberUrl(group, carol), alice.Token, 404)).ProblemAsync(404);
        await node2.DeleteAsync(MemberUrl(group, bob), bob.Token, 204);
        Assert.Equal(new[] { alice.Name }, (await node1.ConversationAsync(alice, group.Id())).MemberNames());
        Assert.Null(await node1.InboxEntryAsync(bob, group.Id()));
        await node1.GetAsync(Url(group), bob.Token, 404);
    }

    [Fact]
    public async Task An_owner_who_leaves_hands_the_group_to_the_longest_standing_member_and_the_newcomer_hears_of_an_add()
    {
        var app = await services.AppAsync();
        var alice = await app.MemberAsync("oa");
        var bob = await app.MemberAsync("ob");     // registered before Dave: the lower user id
        var dave = await app.MemberAsync("od");
        var group = await app.GroupAsync(alice, "succession", dave);
        await using var bobs = await SseClient.OpenAsync(app, bob.Token);
        await app.PostAsync($"{Url(group)}/members", new { username = bob.Name }, alice.Token, 200);
        var added = JsonNode.Parse((await bobs.NextOfAsync("conversation")).Data)!;
        Assert.Equal(Chat.Names(alice, bob, dave), added.MemberNames());
        Assert.Equal(alice.Name, added["owner"].Str());

        await app.DeleteAsync(MemberUrl(group, alice), alice.Token, 204);
        // Dave joined at the start, Bob later: Dave owns it now, though Bob's id is lower.
        var now = await app.ConversationAsync(bob, group.Id());
        Assert.Equal(dave.Name, now["owner"].Str());
        Assert.Equal(dave.Name, JsonNode.Parse((await bobs.NextOfAsync("conversation")).Data)!["owner"].Str());
        await app.PatchAsync(Url(group), new { title = "bob's" }, bob.Token, 403);
        await app.PatchAsync(Url(group), new { title = "dave's" }, dave.Token, 200);
        await app.DeleteAsync(MemberUrl(group, bob), dave.Token, 204);
        // The owner may leave too; the last one out leaves an empty, ownerless group nobody sees.
        await app.DeleteAsync(MemberUrl(group, dave), dave.Token, 204);
        Assert.Equal("", await services.ScalarAsync($"SELECT owner_id FROM conversations WHERE id = {group.Id()} AND owner_id IS NOT NULL"));
        await app.GetAsync(Url(group), dave.Token, 404);
    }

    [Fact]
    public async Task Renaming_or_adding_as_one_leaves_in_a_request_of_ones_own_answers_200_or_404_never_500()
    {
        var app = await services.AppAsync();
        var alice = await app.MemberAsync("ra");
        var bob = await app.MemberAsync("rb");
        var carol = await app.MemberAsync("rc");
        var seen = new List<string>();
        for (var round = 0; round < 60; round++)
        {
            var group = await app.GroupAsync(alice, $"race {round}", bob);
            // Alice renames as she leaves; Bob adds Carol as he leaves. Either may come first.
            var rename = app.PatchAsync(Url(group), new { title = $"renamed {round}" }, alice.Token, null);
            var aliceLeaves = app.DeleteAsync(MemberUrl(group, alice), alice.Token, 204);
            var add = app.PostAsync($"{Url(group)}/members", new { username = carol.Name }, bob.Token, null);
            var bobLeaves = app.DeleteAsync(MemberUrl(group, bob), bob.Token, 204);
            await Task.WhenAll(aliceLeaves, bobLeaves);
            foreach (var (call, answer) in new[] { ("rename", await rename), ("add", await add) })
            {
                var status = answer.Context.Response.StatusCode;
                Assert.True(status is 200 or 404, $"{call} in round {round} answered {status}: {await answer.ReadAsTextAsync()}");
                seen.Add($"{call} {status}");
            }
        }
        Assert.Contains("rename 200", seen);
        Assert.Contains("add 200", seen);
    }

    [Fact]
    public async Task Each_members_read_mark_is_part_of_the_conversation_and_survives_a_reload_on_another_node()
    {
        var node1 = await services.AppAsync();
        await using var node2 = await services.StartAppAsync();
        var alice = await node1.MemberAsync("pa");
        var bob = await node1.MemberAsync("pb");
        var carol = await node1.MemberAsync("pc");
        var group = await node1.GroupAsync(alice, "receipts", bob, carol);
        Assert.All(group["members"]!.AsArray(), m => Assert.True(m!.AsObject().ContainsKey("readUpTo") && m["readUpTo"] is null));
        var first = await node1.SendAsync(alice, group.Id(), "one");
        var second = await node1.SendAsync(alice, group.Id(), "two");
        await node1.PostAsync($"{Url(group)}/read", new { upTo = first.Id() }, bob.Token, 204);

        var view = await node2.ConversationAsync(carol, group.Id());
        string? ReadUpTo(JsonNode conversation, Member member) =>
            conversation["members"]!.AsArray().Single(m => m!["username"].Str() == member.Name)!["readUpTo"]?.GetValue<string>();
        Assert.Equal(second.Id(), ReadUpTo(view, alice));   // a sender has read their own messages
        Assert.Equal(first.Id(), ReadUpTo(view, bob));
        Assert.Null(ReadUpTo(view, carol));
        await node2.PostAsync($"{Url(group)}/read", new { upTo = second.Id() }, bob.Token, 204);
        Assert.Equal(second.Id(), ReadUpTo((await node1.InboxEntryAsync(alice, group.Id()))!, bob));
    }

    [Fact]
    public async Task Groups_from_before_owners_are_owned_by_the_founder_who_spoke_first_or_else_the_oldest_founding_account()
    {
        var app = await services.AppAsync();
        var alice = await app.MemberAsync("ma");
        var bob = await app.MemberAsync("mb");
        var carol = await app.MemberAsync("mc");
        var dave = await app.MemberAsync("md");
        var spoken = await app.GroupAsync(alice, "spoken", bob, carol);
        await app.PostAsync($"{Url(spoken)}/members", new { username = dave.Name }, alice.Token, 200);
        await app.SendAsync(dave, spoken.Id(), "a latecomer speaks first");   // not a founder
        await app.SendAsync(carol, spoken.Id(), "carol speaks");
        await app.SendAsync(alice, spoken.Id(), "alice speaks");
        var silent = await app.GroupAsync(carol, "silent", bob, alice);
        await services.SqlAsync($"UPDATE conversations SET owner_id = NULL WHERE id IN ({spoken.Id()}, {silent.Id()})");

        await using (var stream = typeof(Ams.Infrastructure.Migrations).Assembly.GetManifestResourceStream("Ams.Migrations.0009_group_owner.sql")!)
        await using (var connection = await app.Services.GetRequiredService<Ams.Infrastructure.MariaDb>().OpenConnectionAsync())
        await using (var migrate = new MySqlConnector.MySqlCommand(await new StreamReader(stream).ReadToEndAsync(), connection))
            await migrate.ExecuteNonQueryAsync();

        Assert.Equal(carol.Name, (await app.ConversationAsync(bob, spoken.Id()))["owner"].Str());
        Assert.Equal(alice.Name, (await app.ConversationAsync(bob, silent.Id()))["owner"].Str());
        Assert.Null((await app.DirectAsync(alice, bob))["owner"]);
    }

    [Theory]
    [InlineData("🦊")]
    [InlineData("zoë")]
    public async Task A_username_no_account_can_have_is_an_unknown_user_wherever_it_is_named(string name)
    {
        var app = await services.AppAsync();
        var alice = await app.MemberAsync("nu");
        var bob = await app.MemberAsync("nv");
        var group = await app.GroupAsync(alice, "names", bob);
        await (await app.DeleteAsync($"{Url(group)}/members/{Uri.EscapeDataString(name)}", alice.Token, 404)).ProblemAsync(404);
        await (await app.PostAsync($"{Url(group)}/members", new { username = name }, alice.Token, null)).ProblemAsync(404);
        await (await app.PostAsync("/api/messages", new { to = name, body = "hi" }, alice.Token, 404)).ProblemAsync(404);
        await (await app.PostAsync("/api/login", new { username = name, password = Api.Password }, null, 401)).ProblemAsync(401);
        Assert.Equal(2, (await app.ConversationAsync(alice, group.Id()))["members"]!.AsArray().Count);
    }
}
