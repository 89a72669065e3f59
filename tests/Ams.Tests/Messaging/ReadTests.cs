using Ams.Tests.Support;

namespace Ams.Tests.Messaging;

/// <summary>POST /api/conversations/{id}/read {upTo}.</summary>
public sealed class ReadTests(Services services) : IClassFixture<Services>
{
    static string ReadUrl(string id) => $"/api/conversations/{Chat.Esc(id)}/read";

    static async Task<int> UnreadAsync(IAlbaHost app, Member member, string id)
    {
        var one = (await app.ConversationAsync(member, id)).Unread();
        var listed = (await app.InboxEntryAsync(member, id))!.Unread();
        Assert.True(one == listed, $"{member.Name}: unread {one} in GET /api/conversations/{{id}} but {listed} in the inbox");
        return one;
    }

    [Fact]
    public async Task A_deleted_message_is_not_unread()
    {
        var app = await services.AppAsync();
        var alice = await app.MemberAsync("rd");
        var bob = await app.MemberAsync("re");
        var direct = await app.DirectAsync(alice, bob);
        var sent = new List<JsonObject>();
        for (var i = 0; i < 3; i++) sent.Add(await app.SendAsync(alice, direct.Id(), $"oops {i}"));
        Assert.Equal(3, await UnreadAsync(app, bob, direct.Id()));
        await app.DeleteAsync($"/api/messages/{sent[0].Id()}", alice.Token, 204);
        await app.DeleteAsync($"/api/messages/{sent[2].Id()}", alice.Token, 204);
        Assert.Equal(1, await UnreadAsync(app, bob, direct.Id()));
    }

    [Fact]
    public async Task Reading_up_to_the_last_message_clears_unread_for_the_reader_only()
    {
        var app = await services.AppAsync();
        var alice = await app.MemberAsync("ra");
        var bob = await app.MemberAsync("rb");
        var carol = await app.MemberAsync("rc");
        var group = await app.GroupAsync(alice, "reading club", bob, carol);
        JsonObject last = null!;
        for (var i = 0; i < 3; i++) last = await app.SendAsync(alice, group.Id(), $"chapter {i}");

        Assert.Equal(3, await UnreadAsync(app, bob, group.Id()));
        Assert.Equal(3, await UnreadAsync(app, carol, group.Id()));
        Assert.Equal(0, await UnreadAsync(app, alice, group.Id()));

        var result = await app.PostAsync(ReadUrl(group.Id()), new { upTo = last.Id() }, bob.Token, 204);
        Assert.Empty(await result.ReadAsTextAsync());

        Assert.Equal(0, await UnreadAsync(app, bob, group.Id()));
        Assert.Equal(3, await UnreadAsync(app, carol, group.Id()));
        Assert.Equal(0, await UnreadAsync(app, alice, group.Id()));

        await app.SendAsync(carol, group.Id(), "epilogue");
        Assert.Equal(1, await UnreadAsync(app, bob, group.Id()));
        Assert.Equal(1, await UnreadAsync(app, alice, group.Id()));
        // Sending marks the sender as having read the conversation up to her own message, as chat apps do.
        Assert.Equal(0, await UnreadAsync(app, carol, group.Id()));
    }

    [Fact]
    public async Task Reading_up_to_a_middle_message_leaves_the_later_ones_unread()
    {
        var app = await services.AppAsync();
        var alice = await app.MemberAsync("ma");
        var bob = await app.MemberAsync("mb");
        var direct = await app.DirectAsync(alice, bob);
        var sent = new List<JsonObject>();
        for (var i = 0; i < 4; i++) sent.Add(await app.SendAsync(alice, direct.Id(), $"part {i}"));

        await app.PostAsync(ReadUrl(direct.Id()), new { upTo = sent[1].Id() }, bob.Token, 204);
        Assert.Equal(2, await UnreadAsync(app, bob, direct.Id()));
        await app.PostAsync(ReadUrl(direct.Id()), new { upTo = sent[3].Id() }, bob.Token, 204);
        Assert.Equal(0, await UnreadAsync(app, bob, direct.Id()));
    }

    [Fact]
    public async Task Reading_is_idempotent()
    {
        var app = await services.AppAsync();
        var alice = await app.MemberAsync("ia");
        var bob = await app.MemberAsync("ib");
        var message = await app.SendToAsync(alice, bob, "read me twice");
        var id = message["conversationId"].Str();
        await app.PostAsync(ReadUrl(id), new { upTo = message.Id() }, bob.Token, 204);
        await app.PostAsync(ReadUrl(id), new { upTo = message.Id() }, bob.Token, 204);
        Assert.Equal(0, await UnreadAsync(app, bob, id));
        // The sender may mark her own message read too.
        await app.PostAsync(ReadUrl(id), new { upTo = message.Id() }, alice.Token, 204);
        Assert.Equal(0, await UnreadAsync(app, alice, id));
    }

    [Fact]
    public async Task A_stranger_or_a_missing_conversation_is_404_and_changes_nothing()
    {
        var app = await services.AppAsync();
        var alice = await app.MemberAsync("sa");
        var bob = await app.MemberAsync("sb");
        var eve = await app.MemberAsync("se");
        var message = await app.SendToAsync(alice, bob, "unread for bob");
        var id = message["conversationId"].Str();

        var stranger = await (await app.PostAsync(ReadUrl(id), new { upTo = message.Id() }, eve.Token, 404)).ProblemAsync(404);
        var missing = await (await app.PostAsync(ReadUrl("abc"), new { upTo = message.Id() }, bob.Token, 404)).ProblemAsync(404);
        Chat.SameJson(Chat.WithoutRequestParts(stranger), Chat.WithoutRequestParts(missing), "non-member vs missing conversation");
        Assert.Equal(1, await UnreadAsync(app, bob, id));
        Assert.Empty(await app.InboxAsync(eve));
    }

    [Fact]
    public async Task UpTo_from_another_conversation_is_a_message_404_the_same_whether_the_reader_sees_it_or_not_and_changes_nothing()
    {
        var app = await services.AppAsync();
        var alice = await app.MemberAsync("oa");
        var bob = await app.MemberAsync("ob");
        var carol = await app.MemberAsync("oc");
        var mine = await app.SendToAsync(alice, bob, "in alice-bob");
        var inCarols = await app.SendToAsync(carol, bob, "in carol-bob (bob is a member of both)");
        var notBobs = await app.SendToAsync(alice, carol, "in alice-carol (bob is not a member)");
        var id = mine["conversationId"].Str();

        foreach (var foreign in new[] { inCarols, notBobs })
        {
            var problem = await (await app.PostAsync(ReadUrl(id), new { upTo = foreign.Id() }, bob.Token, 404)).ProblemAsync(404);
            // Bob is a member, so it is the message that is not found; a stranger still only learns "Conversation not found".
            Assert.Equal("Message not found", problem["title"].Str());
        }
        Assert.Equal(1, await UnreadAsync(app, bob, id));
        Assert.Equal(1, await UnreadAsync(app, bob, inCarols["conversationId"].Str()));
    }

    [Theory]
    [InlineData("""{"upTo":"abc"}""")]
    [InlineData("""{"upTo":"0"}""")]
    [InlineData("""{"upTo":"99999999999999999999999999"}""")]
    public async Task An_upTo_that_is_no_message_is_400_or_404_never_204_or_500(string body)
    {
        var app = await services.AppAsync();
        var alice = await app.MemberAsync("ba");
        var bob = await app.MemberAsync("bb");
        var message = await app.SendToAsync(alice, bob, "still unread");
        var id = message["conversationId"].Str();
        var result = await app.PostRawAsync(ReadUrl(id), body, bob.Token, null);
        Assert.True(result.Status() is 400 or 404, $"{body}: status {result.Status()}: {await result.ReadAsTextAsync()}");
        await result.ProblemAsync(result.Status());
        Assert.Equal(1, await UnreadAsync(app, bob, id));
    }

    [Theory]
    [InlineData("""{"upTo":""}""")]
    [InlineData("""{}""")]
    [InlineData("""{"upTo":null}""")]
    [InlineData("""{"upTo":42}""")]
    [InlineData("""{"upTo":["x"]}""")]
    [InlineData("""{"upTo":""")]
    [InlineData("""not json""")]
    [InlineData("")]
    public async Task A_missing_or_mistyped_upTo_and_malformed_json_are_400(string body)
    {
        var app = await services.AppAsync();
        var alice = await app.MemberAsync("ca");
        var bob = await app.MemberAsync("cb");
        var message = await app.SendToAsync(alice, bob, "still unread");
        var id = message["conversationId"].Str();
        var result = await app.PostRawAsync(ReadUrl(id), body, bob.Token, 400);
        await result.ProblemAsync(400);
        Assert.Equal(1, await UnreadAsync(app, bob, id));
    }
}
