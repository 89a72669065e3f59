using Ams.Infrastructure;
using Ams.Tests.Support;
using System.Globalization;
using Microsoft.Extensions.DependencyInjection;
using Ams.Infrastructure.Messaging;
using MySqlConnector;

namespace Ams.Tests.Messaging;

/// <summary>POST /api/conversations, GET /api/conversations, GET /api/conversations/{id}, POST /api/conversations/{id}/members.</summary>
public sealed class ConversationTests(Services services) : IClassFixture<Services>
{
    static void AssertConversationShape(JsonObject conversation)
    {
        Assert.False(string.IsNullOrEmpty(conversation["id"]?.GetValue<string>()), conversation.ToJsonString());
        Assert.Contains(conversation["kind"].Str(), new[] { "direct", "group" });
        Assert.True(conversation.ContainsKey("title"), $"no title field: {conversation.ToJsonString()}");
        Assert.True(conversation.ContainsKey("lastMessage"), $"no lastMessage field: {conversation.ToJsonString()}");
        Assert.NotNull(conversation["unread"]);
        foreach (var member in conversation["members"]!.AsArray())
        {
            Assert.False(string.IsNullOrEmpty(member!["username"]?.GetValue<string>()));
            Assert.False(string.IsNullOrEmpty(member["displayName"]?.GetValue<string>()));
        }
    }

    [Fact]
    public async Task A_group_of_three_with_a_title_is_201_and_every_member_sees_it()
    {
        var app = await services.AppAsync();
        var alice = await app.MemberAsync("ga", "Alice Ä");
        var bob = await app.MemberAsync("gb", "Bob 🦊");
        var carol = await app.MemberAsync("gc");
        const string title = "Project ✨ <b>X</b>";

        var group = await app.GroupAsync(alice, title, bob, carol);

        AssertConversationShape(group);
        Assert.Equal("group", group["kind"].Str());
        Assert.Equal(title, group["title"].Str());
        Assert.Equal(Chat.Names(alice, bob, carol), group.MemberNames());
        var displayNames = group["members"]!.AsArray().ToDictionary(m => m!["username"].Str(), m => m!["displayName"].Str());
        Assert.Equal("Alice Ä", displayNames[alice.Name]);
        Assert.Equal("Bob 🦊", displayNames[bob.Name]);
        Assert.Equal(carol.Name, displayNames[carol.Name]);
        Assert.Null(group["lastMessage"]);
        Assert.Equal(0, group.Unread());

        foreach (var member in new[] { alice, bob, carol })
        {
            var seen = await app.ConversationAsync(member, group.Id());
            Assert.Equal(group.Id(), seen.Id());
            Assert.Equal(title, seen["title"].Str());
            Assert.Equal(Chat.Names(alice, bob, carol), seen.MemberNames());
            Assert.NotNull(await app.InboxEntryAsync(member, group.Id()));
        }
    }

    [Fact]
    public async Task A_direct_conversation_is_201_once_then_200_with_the_same_id_from_either_side()
    {
        var app = await services.AppAsync();
        var alice = await app.MemberAsync("da");
        var bob = await app.MemberAsync("db");

        var first = await app.OpenAsync(alice, null, 201, bob);
        AssertConversationShape(first);
        Assert.Equal("direct", first["kind"].Str());
        Assert.Null(first["title"]);
        Assert.Equal(Chat.Names(alice, bob), first.MemberNames());

        var again = await app.OpenAsync(alice, null, 200, bob);
        Assert.Equal(first.Id(), again.Id());
        Assert.Equal("direct", again["kind"].Str());

        var fromBob = await app.OpenAsync(bob, null, 200, alice);
        Assert.Equal(first.Id(), fromBob.Id());

        Assert.Single(await app.InboxAsync(alice));
        Assert.Single(await app.InboxAsync(bob));
    }

    [Fact]
    public async Task The_direct_conversation_is_found_whatever_the_case_of_the_username()
    {
        var app = await services.AppAsync();
        var alice = await app.MemberAsync("ca");
        var bob = await app.MemberAsync("cb");
        var first = await app.DirectAsync(alice, bob);
        var result = await app.PostAsync("/api/conversations", new { members = new[] { alice.Name.ToUpperInvariant() } }, bob.Token, 200);
        Assert.Equal(first.Id(), (await result.JsonAsync()).Id());
    }

    [Theory]
    [InlineData("\u200B"), InlineData("\uFEFF"), InlineData("\u200D\u200D"), InlineData("\u061C"), InlineData(" \u200B\u2800 "), InlineData("\u3164")]
    public async Task A_title_with_nothing_visible_is_400_when_made_and_when_renamed(string title)
    {
        var app = await services.AppAsync();
        var alice = await app.MemberAsync("ia");
        var bob = await app.MemberAsync("ib");
        var made = await app.PostAsync("/api/conversations", new { members = new[] { bob.Name }, title }, alice.Token, 400);
        Assert.Equal(["title"], Api.ErrorNames(await made.ProblemAsync(400)));
        var group = await app.GroupAsync(alice, "  spaced  ", bob);
        Assert.Equal("spaced", group["title"].Str());   // trimmed when made, as when renamed
        var renamed = await app.PatchAsync($"/api/conversations/{group.Id()}", new { title }, alice.Token, 400);
        Assert.Equal(["title"], Api.ErrorNames(await renamed.ProblemAsync(400)));
        Assert.Equal("spaced", (await app.ConversationAsync(bob, group.Id()))["title"].Str());
    }

    [Fact]
    public async Task One_other_member_with_a_title_is_a_group_not_the_direct_conversation()
    {
        var app = await services.AppAsync();
        var alice = await app.MemberAsync("ta");
        var bob = await app.MemberAsync("tb");
        var direct = await app.DirectAsync(alice, bob);
        var titled = await app.OpenAsync(alice, "Just us", 201, bob);
        Assert.Equal("group", titled["kind"].Str());
        Assert.Equal("Just us", titled["title"].Str());
        Assert.NotEqual(direct.Id(), titled.Id());
    }

    [Fact]
    public async Task An_unknown_username_is_404_problem_and_creates_nothing()
    {
        var app = await services.AppAsync();
        var alice = await app.MemberAsync("ua");
        var bob = await app.MemberAsync("ub");
        var ghost = Api.UniqueName("ghost");

        var group = await app.PostAsync("/api/conversations", new { members = new[] { bob.Name, ghost }, title = "with a ghost" }, alice.Token, 404);
        await group.ProblemAsync(404);
        var direct = await app.PostAsync("/api/conversations", new { members = new[] { ghost } }, alice.Token, 404);
        var problem = await direct.ProblemAsync(404);
        Assert.DoesNotContain("Exception", problem.ToJsonString());

        Assert.Empty(await app.InboxAsync(alice));
        Assert.Empty(await app.InboxAsync(bob));
    }

    [Theory]
    [InlineData("""{"members":[]}""")]
    [InlineData("""{"members":["{self}"]}""")]
    [InlineData("""{"members":["{self}"],"title":"me, myself"}""")]
    [InlineData("""{}""")]
    [InlineData("""{"title":"nobody"}""")]
    [InlineData("""{"members":null}""")]
    [InlineData("""{"members":"{other}"}""")]
    [InlineData("""{"members":[42]}""")]
    [InlineData("""{"members":{"a":"{other}"}}""")]
    [InlineData("""{"members":["{other}"],"title":7}""")]
    [InlineData("""{"members":""")]
    [InlineData("""not json""")]
    [InlineData("""[]""")]
    [InlineData("")]
    public async Task Invalid_member_lists_and_malformed_json_are_400_problems(string template)
    {
        var app = await services.AppAsync();
        var alice = await app.MemberAsync("ia");
        var bob = await app.MemberAsync("ib");
        var body = template.Replace("{self}", alice.Name).Replace("{other}", bob.Name);
        var result = await app.PostRawAsync("/api/conversations", body, alice.Token, 400);
        await result.ProblemAsync(400);
        Assert.Empty(await app.InboxAsync(alice));
    }

    [Theory]
    [InlineData(101)]
    [InlineData(5000)]
    public async Task A_long_title_is_either_kept_exactly_or_refused_with_400_never_500(int length)
    {
        var app = await services.AppAsync();
        var alice = await app.MemberAsync("la");
        var bob = await app.MemberAsync("lb");
        var title = string.Concat(Enumerable.Repeat("t🦊", length / 2 + 1))[..length];
        if (char.IsHighSurrogate(title[^1])) title = title[..^1] + "t";
        var result = await app.PostAsync("/api/conversations", new { members = new[] { bob.Name }, title }, alice.Token, null);
        if (result.Status() == 201)
            Assert.Equal(title, (await result.JsonAsync())["title"].Str());
        else
        {
            Assert.True(result.Status() == 400, $"a {length}-character title: status {result.Status()}: {await result.ReadAsTextAsync()}");
            await result.ProblemAsync(400);
            Assert.Empty(await app.InboxAsync(alice));
        }
    }

    [Theory]
    [InlineData("GET", "/api/conversations")]
    [InlineData("POST", "/api/conversations")]
    [InlineData("GET", "/api/conversations/abc")]
    [InlineData("POST", "/api/conversations/abc/members")]
    [InlineData("GET", "/api/conversations/abc/messages")]
    [InlineData("POST", "/api/conversations/abc/read")]
    [InlineData("POST", "/api/messages")]
    public async Task Every_messaging_call_needs_a_token(string method, string url)
    {
        var app = await services.AppAsync();
        foreach (var token in new[] { null, "ams_forged" })
        {
            var result = method == "GET"
                ? await app.GetAsync(url, token, 401)
                : await app.PostRawAsync(url, """{"members":["x"],"username":"x","upTo":"x","to":"x","body":"x"}""", token, 401);
            await result.ProblemAsync(401);
        }
    }

    [Fact]
    public async Task The_inbox_is_newest_activity_first_with_last_message_and_unread()
    {
        var app = await services.AppAsync();
        var alice = await app.MemberAsync("ia");
        var bob = await app.MemberAsync("ib");
        var carol = await app.MemberAsync("ic");
        var withBob = await app.DirectAsync(alice, bob);
        var withCarol = await app.DirectAsync(alice, carol);
        var group = await app.GroupAsync(alice, "all three", bob, carol);

        await app.SendAsync(bob, withBob.Id(), "b1");
        var c1 = await app.SendAsync(carol, withCarol.Id(), "c1");
        var a1 = await app.SendAsync(alice, group.Id(), "a1");
        var b2 = await app.SendAsync(bob, withBob.Id(), "b2");

        var inbox = await app.InboxAsync(alice);
        Assert.Equal(new[] { withBob.Id(), group.Id(), withCarol.Id() }, inbox.Select(c => c!.Id()).ToArray());
        foreach (var entry in inbox) AssertConversationShape(entry!.AsObject());
        Chat.SameJson(b2, inbox[0]!["lastMessage"], "alice's lastMessage with bob");
        Chat.SameJson(a1, inbox[1]!["lastMessage"], "alice's lastMessage in the group");
        Chat.SameJson(c1, inbox[2]!["lastMessage"], "alice's lastMessage with carol");
        Assert.Equal(2, inbox[0]!.Unread());
        Assert.Equal(0, inbox[1]!.Unread());   // her own message is not unread for her
        Assert.Equal(1, inbox[2]!.Unread());

        var bobs = await app.InboxAsync(bob);
        Assert.Equal(new[] { withBob.Id(), group.Id() }, bobs.Select(c => c!.Id()).ToArray());
        Assert.Equal(0, bobs[0]!.Unread());
        Assert.Equal(1, bobs[1]!.Unread());

        // New activity moves a conversation to the top.
        await app.SendAsync(carol, withCarol.Id(), "c2");
        Assert.Equal(withCarol.Id(), (await app.InboxAsync(alice))[0]!.Id());

        // The single-conversation view agrees with the inbox.
        var one = await app.ConversationAsync(alice, withBob.Id());
        Chat.SameJson(b2, one["lastMessage"], "GET /api/conversations/{id} lastMessage");
        Assert.Equal(2, one.Unread());
    }

    [Fact]
    public async Task A_new_user_has_an_empty_inbox()
    {
        var app = await services.AppAsync();
        var loner = await app.MemberAsync("lo");
        Assert.Empty(await app.InboxAsync(loner));
    }

    [Fact]
    public async Task A_conversation_is_404_for_strangers_missing_ids_and_garbage_and_the_404s_look_alike()
    {
        var app = await services.AppAsync();
        var alice = await app.MemberAsync("sa");
        var bob = await app.MemberAsync("sb");
        var stranger = await app.MemberAsync("sx");
        var direct = await app.DirectAsync(alice, bob);
        await app.SendAsync(alice, direct.Id(), "not for strangers");
        Assert.Equal(direct.Id(), (await app.ConversationAsync(bob, direct.Id())).Id());

        var id = direct.Id();
        var missing = id[..^1] + (id[^1] == '1' ? '2' : '1');
        var strangers = await app.GetAsync($"/api/conversations/{Chat.Esc(id)}", stranger.Token, 404);
        var strangerProblem = await strangers.ProblemAsync(404);
        Assert.DoesNotContain("not for strangers", await strangers.ReadAsTextAsync());
        foreach (var other in new[] { missing, "abc", "0", "-1", "99999999999999999999999999", new string('f', 200) })
        {
            var result = await app.GetAsync($"/api/conversations/{Chat.Esc(other)}", alice.Token, 404);
            var problem = await result.ProblemAsync(404);
            Chat.SameJson(Chat.WithoutRequestParts(strangerProblem), Chat.WithoutRequestParts(problem),
                $"404 for a non-member vs 404 for id '{other}'");
        }
    }

    [Fact]
    public async Task Adding_a_member_to_a_group_returns_it_and_the_new_member_sees_it()
    {
        var app = await services.AppAsync();
        var alice = await app.MemberAsync("aa");
        var bob = await app.MemberAsync("ab");
        var dave = await app.MemberAsync("ad", "Dave <i>D</i>");
        var group = await app.GroupAsync(alice, "growing", bob);

        var result = await app.PostAsync($"/api/conversations/{Chat.Esc(group.Id())}/members", new { username = dave.Name }, bob.Token, 200);
        var grown = (await result.JsonAsync()).AsObject();
        AssertConversationShape(grown);
        Assert.Equal(group.Id(), grown.Id());
        Assert.Equal("group", grown["kind"].Str());
        Assert.Equal(Chat.Names(alice, bob, dave), grown.MemberNames());
        Assert.Equal("Dave <i>D</i>", grown["members"]!.AsArray().Single(m => m!["username"].Str() == dave.Name)!["displayName"].Str());

        Assert.Equal(Chat.Names(alice, bob, dave), (await app.ConversationAsync(dave, group.Id())).MemberNames());
        Assert.Equal(Chat.Names(alice, bob, dave), (await app.ConversationAsync(alice, group.Id())).MemberNames());
        Assert.NotNull(await app.InboxEntryAsync(dave, group.Id()));
    }

    [Fact]
    public async Task Members_cannot_be_added_to_a_direct_conversation()
    {
        var app = await services.AppAsync();
        var alice = await app.MemberAsync("xa");
        var bob = await app.MemberAsync("xb");
        var carol = await app.MemberAsync("xc");
        var direct = await app.DirectAsync(alice, bob);

        var result = await app.PostAsync($"/api/conversations/{Chat.Esc(direct.Id())}/members", new { username = carol.Name }, alice.Token, 400);
        await result.ProblemAsync(400);
        Assert.Equal(Chat.Names(alice, bob), (await app.ConversationAsync(alice, direct.Id())).MemberNames());
        await app.GetAsync($"/api/conversations/{Chat.Esc(direct.Id())}", carol.Token, 404);
    }

    [Fact]
    public async Task Adding_an_unknown_user_or_adding_as_a_stranger_or_to_a_missing_conversation_is_404()
    {
        var app = await services.AppAsync();
        var alice = await app.MemberAsync("na");
        var bob = await app.MemberAsync("nb");
        var stranger = await app.MemberAsync("nx");
        var group = await app.GroupAsync(alice, "closed", bob);
        var url = $"/api/conversations/{Chat.Esc(group.Id())}/members";

        await (await app.PostAsync(url, new { username = Api.UniqueName("ghost") }, alice.Token, 404)).ProblemAsync(404);
        await (await app.PostAsync(url, new { username = stranger.Name }, stranger.Token, 404)).ProblemAsync(404);
        await (await app.PostAsync(url, new { username = bob.Name }, stranger.Token, 404)).ProblemAsync(404);
        await (await app.PostAsync("/api/conversations/abc/members", new { username = bob.Name }, alice.Token, 404)).ProblemAsync(404);

        Assert.Equal(Chat.Names(alice, bob), (await app.ConversationAsync(alice, group.Id())).MemberNames());
        await app.GetAsync($"/api/conversations/{Chat.Esc(group.Id())}", stranger.Token, 404);
    }

    [Theory]
    [InlineData("""{}""")]
    [InlineData("""{"username":""}""")]
    [InlineData("""{"username":42}""")]
    [InlineData("""{"username":["a"]}""")]
    [InlineData("""{"username":""")]
    [InlineData("""not json""")]
    public async Task Adding_a_member_with_a_bad_body_is_400(string body)
    {
        var app = await services.AppAsync();
        var alice = await app.MemberAsync("ba");
        var bob = await app.MemberAsync("bb");
        var group = await app.GroupAsync(alice, "strict", bob);
        var result = await app.PostRawAsync($"/api/conversations/{Chat.Esc(group.Id())}/members", body, alice.Token, 400);
        await result.ProblemAsync(400);
        Assert.Equal(Chat.Names(alice, bob), (await app.ConversationAsync(alice, group.Id())).MemberNames());
    }

    [Fact]
    public async Task A_direct_conversation_is_keyed_by_its_pair_lower_id_first_and_a_creation_that_loses_the_race_gets_the_winners()
    {
        var app = await services.AppAsync();
        var alice = await app.MemberAsync("ka");
        var bob = await app.MemberAsync("kb");
        var carol = await app.MemberAsync("kc");
        var (a, b, c) = (await services.UserIdAsync(alice.Name), await services.UserIdAsync(bob.Name), await services.UserIdAsync(carol.Name));
        Assert.True(a < b);

        // The key is stored: an existing pair must be found whoever of the two opens it, across versions.
        var direct = await app.DirectAsync(bob, alice);
        Assert.Equal($"{a}:{b}", await services.ScalarAsync($"SELECT direct_key FROM conversations WHERE id = {direct.Id()}"));

        // Another creation of the pair commits between this one's lookup and its insert.
        var data = app.Services.GetRequiredService<MariaDb>();
        await using var winner = await data.OpenConnectionAsync();
        await using var transaction = await Transaction.BeginAsync(winner);
        var winnerId = await Conversations.InsertAsync(winner, transaction, "direct", null, $"{a}:{c}", [a, c], DateTime.UtcNow);
        await using var loser = await data.OpenConnectionAsync();
        var losing = Conversations.FindOrCreateDirectAsync(loser, c, a, DateTime.UtcNow);
        await Task.Delay(500);
        Assert.False(losing.IsCompleted, "the second creation did not wait for the first one's key");
        await transaction.CommitAsync();
        Assert.Equal((winnerId, false), (await losing).ToTuple().ToValueTuple());
        Assert.Equal(Ids.Of(winnerId), (await app.OpenAsync(alice, null, 200, carol)).Id());
    }

    [Fact]
    public async Task A_member_added_later_sees_only_messages_sent_after_joining_and_receives_later_ones()
    {
        var app = await services.AppAsync();
        var alice = await app.MemberAsync("la");
        var bob = await app.MemberAsync("lb");
        var dave = await app.MemberAsync("ld");
        var group = await app.GroupAsync(alice, "history is private", bob);
        var early1 = await app.SendAsync(alice, group.Id(), "before dave 1");
        var before = await app.SendAsync(bob, group.Id(), "before dave 2");
        await using var davesStream = await SseClient.OpenAsync(app, dave.Token);
        await using var bobsStream = await SseClient.OpenAsync(app, bob.Token);

        await app.PostAsync($"/api/conversations/{Chat.Esc(group.Id())}/members", new { username = dave.Name }, alice.Token, 200);
        // The add as each member hears of it: the last message only for those who were there.
        Assert.Null(JsonNode.Parse((await davesStream.NextOfAsync("conversation")).Data)!["lastMessage"]);
        Chat.SameJson(before, JsonNode.Parse((await bobsStream.NextOfAsync("conversation")).Data)!["lastMessage"], "bob's conversation event");

        Assert.Empty(await app.HistoryAsync(dave, group.Id()));
        var davesView = await app.ConversationAsync(dave, group.Id());
        Assert.Equal(0, davesView.Unread());
        Assert.Null(davesView["lastMessage"]);
        Assert.Equal(0, (await app.InboxEntryAsync(dave, group.Id()))!.Unread());
        // Paging from an earlier message does not reach behind the join either.
        var fromEarly = await app.GetAsync($"/api/conversations/{Chat.Esc(group.Id())}/messages?before={Chat.Esc(early1.Id())}", dave.Token, null);
        Assert.DoesNotContain("before dave", await fromEarly.ReadAsTextAsync());

        var late = await app.SendAsync(bob, group.Id(), "after dave joined");
        var history = await app.HistoryAsync(dave, group.Id());
        Chat.SameJson(late, Assert.Single(history), "dave's history");
        davesView = await app.ConversationAsync(dave, group.Id());
        Assert.Equal(1, davesView.Unread());
        Chat.SameJson(late, davesView["lastMessage"], "dave's lastMessage");

        var fromDave = await app.SendAsync(dave, group.Id(), "hi, I'm new");
        Assert.Equal(new[] { "before dave 1", "before dave 2", "after dave joined", "hi, I'm new" }, Chat.Bodies(await app.HistoryAsync(alice, group.Id())));
        Chat.SameJson(fromDave, (await app.ConversationAsync(alice, group.Id()))["lastMessage"], "alice's lastMessage");
    }
}
