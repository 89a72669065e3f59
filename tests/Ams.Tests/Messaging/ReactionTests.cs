using Emoji = Ams.Infrastructure.Messaging.Emoji;
using Ams.Tests.Support;

namespace Ams.Tests.Messaging;

/// <summary>PUT/DELETE /api/messages/{id}/reactions/{emoji}: one emoji, idempotent, counted per viewer, live and replayed on every node.</summary>
public sealed class ReactionTests(Services services) : IClassFixture<Services>
{
    static string Url(JsonNode message, string emoji) => $"/api/messages/{Chat.Esc(message.Id())}/reactions/{Uri.EscapeDataString(emoji)}";

    static Task<IScenarioResult> PutAsync(IAlbaHost app, string url, string? token, int status) =>
        app.Scenario(s =>
        {
            s.Put.Url(url);
            if (token is not null) s.WithBearerToken(token);
            s.StatusCodeShouldBe(status);
        });

    [Theory]
    [InlineData("👍"), InlineData("👍🏽"), InlineData("❤️"), InlineData("❤"), InlineData("☕"), InlineData("🇫🇷"), InlineData("👩‍💻"),
     InlineData("👨‍👩‍👧‍👦"), InlineData("🧑🏻‍❤️‍💋‍🧑🏼"), InlineData("1️⃣"), InlineData("#⃣"), InlineData("🏴󠁧󠁢󠁳󠁣󠁴󠁿"), InlineData("🫠"), InlineData("©️")]
    public void One_emoji_is_accepted(string emoji) => Assert.True(Emoji.IsOne(emoji), emoji);

    [Theory]
    [InlineData(""), InlineData(" "), InlineData("a"), InlineData("1"), InlineData("#"), InlineData("ab"), InlineData("👍👍"), InlineData("👍 "),
     InlineData(" 👍"), InlineData("🏻"), InlineData("\u200D"), InlineData("\u200D👍"), InlineData("👍\u200D"), InlineData("🇫"), InlineData("🇫🇷🇩🇪"),
     InlineData("😀\u0301"), InlineData("\ud83d"), InlineData("\ufe0f"), InlineData("<b>"), InlineData("é"), InlineData("中"), InlineData("🏴󠁧󠁢"),
     InlineData("\u20e3"), InlineData("�"), InlineData(null)]
    public void Anything_else_is_not(string? text) => Assert.False(Emoji.IsOne(text), text);

    [Theory]
    [InlineData("❤", "❤\ufe0f"), InlineData("❤\ufe0f", "❤\ufe0f"), InlineData("👍\ufe0f", "👍"), InlineData("👍", "👍"), InlineData("☺", "☺\ufe0f"),
     InlineData("☝🏻", "☝🏻"), InlineData("☝\ufe0f🏻", "☝🏻"), InlineData("1⃣", "1\ufe0f⃣"), InlineData("1\ufe0f⃣", "1\ufe0f⃣"),
     InlineData("🏳\u200D🌈", "🏳\ufe0f\u200D🌈"), InlineData("❤\ufe0f\u200D🔥", "❤\ufe0f\u200D🔥"), InlineData("❤\u200D🔥", "❤\ufe0f\u200D🔥"),
     InlineData("👨\ufe0f\u200D👩\u200D👧", "👨\u200D👩\u200D👧"), InlineData("🇫🇷", "🇫🇷"), InlineData("🏴󠁧󠁢󠁳󠁣󠁴󠁿", "🏴󠁧󠁢󠁳󠁣󠁴󠁿"), InlineData("👁\u200D🗨", "👁\ufe0f\u200D🗨\ufe0f")]
    public void Each_emoji_has_one_spelling_and_it_is_still_one_emoji(string given, string canonical)
    {
        Assert.Equal(canonical, Emoji.Canonical(given));
        Assert.True(Emoji.IsOne(Emoji.Canonical(given)), given);
    }

    [Fact]
    public async Task The_same_emoji_with_or_without_its_variation_selector_is_one_reaction()
    {
        var app = await services.AppAsync();
        var alice = await app.MemberAsync("kv");
        var bob = await app.MemberAsync("kw");
        var direct = await app.DirectAsync(alice, bob);
        var message = await app.SendAsync(alice, direct.Id(), "one heart");
        await using var bobs = await SseClient.OpenAsync(app, bob.Token);
        await PutAsync(app, Url(message, "❤"), alice.Token, 204);
        await PutAsync(app, Url(message, "❤\ufe0f"), alice.Token, 204);   // the same reaction: nothing changes
        await PutAsync(app, Url(message, "❤\ufe0f"), bob.Token, 204);
        Chat.SameJson(new JsonArray(new JsonObject { ["emoji"] = "❤\ufe0f", ["count"] = 2, ["me"] = true }),
            (await app.HistoryAsync(bob, direct.Id()))[0]["reactions"], "bob's history");
        Assert.Equal(["❤\ufe0f", "❤\ufe0f"], new[] { JsonNode.Parse((await bobs.NextOfAsync("reaction")).Data)!["emoji"].Str(), JsonNode.Parse((await bobs.NextOfAsync("reaction")).Data)!["emoji"].Str() });
        await app.DeleteAsync(Url(message, "❤"), alice.Token, 204);   // taken back in the other spelling
        Chat.SameJson(new JsonArray(new JsonObject { ["emoji"] = "❤\ufe0f", ["count"] = 1, ["me"] = true }),
            (await app.HistoryAsync(bob, direct.Id()))[0]["reactions"], "bob's history after alice took hers back");
        var takenBack = JsonNode.Parse((await bobs.NextOfAsync("reaction")).Data)!;
        Assert.Equal(("❤\ufe0f", alice.Name, false), (takenBack["emoji"].Str(), takenBack["username"].Str(), takenBack["added"]!.GetValue<bool>()));
    }

    [Fact]
    public async Task Reactions_stored_in_an_older_spelling_count_as_the_emoji_and_go_when_it_is_taken_back()
    {
        var app = await services.AppAsync();
        var alice = await app.MemberAsync("ko");
        var bob = await app.MemberAsync("kp");
        var direct = await app.DirectAsync(alice, bob);
        var message = await app.SendAsync(alice, direct.Id(), "from before");
        // As a release that stored each spelling as sent left them: alice twice (❤ and ❤️), bob once (❤).
        await services.SqlAsync($"INSERT INTO reactions (message_id, emoji, user_id, created_at) SELECT {message.Id()}, e, u.id, NOW(3) " +
            $"FROM users u JOIN (SELECT _utf8mb4 0xE29DA4 AS e UNION ALL SELECT _utf8mb4 0xE29DA4EFB88F) spellings " +
            $"WHERE u.username = '{alice.Name}' OR (u.username = '{bob.Name}' AND e = _utf8mb4 0xE29DA4)");
        Chat.SameJson(new JsonArray(new JsonObject { ["emoji"] = "❤\ufe0f", ["count"] = 2, ["me"] = true }),
            (await app.HistoryAsync(bob, direct.Id()))[0]["reactions"], "both spellings as one emoji, each user once");
        await PutAsync(app, Url(message, "❤\ufe0f"), bob.Token, 204);   // bob has it already, in the old spelling
        Assert.Equal("3", (await services.ScalarAsync($"SELECT COUNT(*) FROM reactions WHERE message_id = {message.Id()}")).Trim());
        await app.DeleteAsync(Url(message, "❤"), alice.Token, 204);       // both of alice's spellings go
        await app.DeleteAsync(Url(message, "❤\ufe0f"), bob.Token, 204);
        Assert.Empty((await app.HistoryAsync(bob, direct.Id()))[0]["reactions"]!.AsArray());
        Assert.Equal("0", (await services.ScalarAsync($"SELECT COUNT(*) FROM reactions WHERE message_id = {message.Id()}")).Trim());
    }

    [Fact]
    public void A_long_run_of_joined_emoji_is_not_one_emoji() =>
        Assert.False(Emoji.IsOne(string.Join("\u200D", Enumerable.Repeat("👍", 9))));

    [Fact]
    public async Task An_emoji_whose_stored_spelling_is_longer_than_the_column_is_400_and_one_that_fits_is_stored()
    {
        // Six ❤ joined by ZWJ are 11 code points as sent and 17 stored (a VS16 after each): MariaDB
        // refused the row, and the client got 503 and the log a stack trace. Five are 14 stored.
        var app = await services.AppAsync();
        var alice = await app.MemberAsync("kx");
        var bob = await app.MemberAsync("ky");
        var direct = await app.DirectAsync(alice, bob);
        var message = await app.SendAsync(alice, direct.Id(), "hearts");
        var six = string.Join("\u200D", Enumerable.Repeat("❤", 6));
        var five = string.Join("\u200D", Enumerable.Repeat("❤", 5));
        Assert.Equal(11, six.EnumerateRunes().Count());
        var refused = await app.Scenario(s =>
        {
            s.Put.Url(Url(message, six));
            s.WithBearerToken(alice.Token);
            s.StatusCodeShouldBe(400);
        });
        Assert.Contains("exactly one emoji", await refused.ReadAsTextAsync());
        await app.DeleteAsync(Url(message, six), alice.Token, 400);
        await PutAsync(app, Url(message, five), alice.Token, 204);
        var stored = (await app.HistoryAsync(bob, direct.Id()))[0]["reactions"]![0]!["emoji"].Str();
        Assert.Equal(string.Join("\u200D", Enumerable.Repeat("❤\ufe0f", 5)), stored);
        Assert.Equal(14, stored.EnumerateRunes().Count());
    }

    [Fact]
    public async Task Reactions_are_idempotent_counted_per_viewer_and_reach_members_on_another_node_live_and_replayed()
    {
        var node1 = await services.AppAsync();
        await using var node2 = await services.StartAppAsync();
        var alice = await node1.MemberAsync("ka");
        var bob = await node1.MemberAsync("kb");
        var carol = await node1.MemberAsync("kc");
        var group = await node1.GroupAsync(alice, "reactions", bob);
        var message = await node1.SendAsync(alice, group.Id(), "react to me");
        Assert.Empty(message["reactions"]!.AsArray());
        await using var bobs = await SseClient.OpenAsync(node2, bob.Token);
        await using var html = await SseClient.OpenAsync(node2, bob.Token, path: "/events");

        await PutAsync(node1, Url(message, "👍"), alice.Token, 204);
        await PutAsync(node1, Url(message, "👍"), alice.Token, 204);   // again: nothing changes, nobody is told
        await PutAsync(node2, Url(message, "👍"), bob.Token, 204);
        await PutAsync(node2, Url(message, "❤️"), bob.Token, 204);
        await node1.DeleteAsync(Url(message, "👍"), alice.Token, 204);
        await node1.DeleteAsync(Url(message, "👍"), alice.Token, 204);   // again: idempotent
        await node1.DeleteAsync(Url(message, "🎉"), alice.Token, 204);   // never added

        // Each with the emoji's count once the change is stored.
        var expected = new[] { (alice.Name, "👍", true, 1), (bob.Name, "👍", true, 2), (bob.Name, "❤️", true, 1), (alice.Name, "👍", false, 1) };
        var live = new List<SseEvent>();
        foreach (var (who, emoji, added, count) in expected)
        {
            var next = await bobs.NextOfAsync("reaction");
            var data = JsonNode.Parse(next.Data)!;
            Assert.Equal((message.Id(), group.Id(), emoji, who, added, count),
                (data["messageId"].Str(), data["conversationId"].Str(), data["emoji"].Str(), data["username"].Str(), data["added"]!.GetValue<bool>(),
                 data["count"]!.GetValue<int>()));
            live.Add(next);
        }
        Assert.True(await bobs.QuietForAsync(TimeSpan.FromMilliseconds(500)));
        var fragment = (await html.NextOfAsync("reaction")).Data;
        Assert.Contains($"data-emoji=\"{System.Text.Encodings.Web.HtmlEncoder.Default.Encode("👍")}\"", fragment);
        Assert.Contains("data-added=\"true\" data-count=\"1\"", fragment);
        Assert.Contains($"data-message=\"{message.Id()}\"", fragment);

        // The tally, as each viewer sees it, everywhere a message appears.
        JsonArray Expected(bool bobsView) => new(
            new JsonObject { ["emoji"] = "👍", ["count"] = 1, ["me"] = bobsView },
            new JsonObject { ["emoji"] = "❤️", ["count"] = 1, ["me"] = bobsView });
        Chat.SameJson(Expected(true), (await node1.HistoryAsync(bob, group.Id()))[0]["reactions"], "bob's history");
        Chat.SameJson(Expected(false), (await node2.HistoryAsync(alice, group.Id()))[0]["reactions"], "alice's history");
        Chat.SameJson(Expected(true), (await node2.InboxEntryAsync(bob, group.Id()))!["lastMessage"]!["reactions"], "bob's inbox");
        Chat.SameJson(Expected(false), (await node1.ConversationAsync(alice, group.Id()))["lastMessage"]!["reactions"], "alice's conversation");
        Assert.Contains("class=\"reactions\"", await (await node1.Scenario(s =>
        {
            s.Get.Url($"/c/{group.Id()}/older");
            s.WithRequestHeader("Cookie", $"ams_session={bob.Token}");
        })).ReadAsTextAsync());

        // An edit keeps the reactions and tells each member their own "me".
        // (A stream read with a time limit that ran out is spent: a fresh one.)
        await using var bobsAgain = await SseClient.OpenAsync(node2, bob.Token);
        var edited = await (await node1.PatchAsync($"/api/messages/{message.Id()}", new { body = "edited" }, alice.Token, 200)).JsonAsync();
        Chat.SameJson(Expected(false), edited["reactions"], "the edit's answer (alice)");
        Chat.SameJson(Expected(true), JsonNode.Parse((await bobsAgain.NextOfAsync("message.edited")).Data)!["reactions"], "bob's message.edited");

        // Replayed after a reconnect: the same changes, in order, each with the count as it is now.
        await using var replay = await SseClient.OpenAsync(node1, bob.Token, (long.Parse(live[0].Id!) - 1).ToString());
        foreach (var original in live)
        {
            var again = (await replay.NextAsync())!;
            Assert.Equal((original.Id, "reaction"), (again.Id, again.Event));
            var (was, now) = (JsonNode.Parse(original.Data)!.AsObject(), JsonNode.Parse(again.Data)!.AsObject());
            Assert.Equal(1, now["count"]!.GetValue<int>());
            was.Remove("count");
            now.Remove("count");
            Chat.SameJson(was, now, "a replayed reaction");
        }

        // A deleted message has no reactions and takes none; who reacted, and how, is gone from storage.
        Assert.NotEqual("0", (await services.ScalarAsync($"SELECT COUNT(*) FROM reaction_changes WHERE message_id = {message.Id()}")).Trim());
        await node1.DeleteAsync($"/api/messages/{message.Id()}", alice.Token, 204);
        Assert.Equal("0", (await services.ScalarAsync($"SELECT (SELECT COUNT(*) FROM reactions WHERE message_id = {message.Id()}) + (SELECT COUNT(*) FROM reaction_changes WHERE message_id = {message.Id()})")).Trim());
        Assert.Empty((await node1.HistoryAsync(bob, group.Id()))[0]["reactions"]!.AsArray());
        Assert.Empty((await node1.ConversationAsync(bob, group.Id()))["lastMessage"]!["reactions"]!.AsArray());
        await PutAsync(node1, Url(message, "👍"), bob.Token, 404);
    }

    [Fact]
    public async Task A_message_replayed_after_its_reactions_already_counts_them_and_their_events_carry_the_count_to_set()
    {
        var app = await services.AppAsync();
        var alice = await app.MemberAsync("kr");
        var bob = await app.MemberAsync("ks");
        var direct = await app.DirectAsync(alice, bob);
        var message = await app.SendAsync(alice, direct.Id(), "react");
        await PutAsync(app, Url(message, "👍"), alice.Token, 204);
        await PutAsync(app, Url(message, "👍"), bob.Token, 204);

        // From before the message: it comes with both reactions counted, then the two changes,
        // whose counts are what to show (adding one per event would make it four).
        await using var replay = await SseClient.OpenAsync(app, bob.Token, "0");
        var replayed = JsonNode.Parse((await replay.NextOfAsync("message")).Data)!;
        Assert.Equal(message.Id(), replayed.Id());
        Chat.SameJson(new JsonArray(new JsonObject { ["emoji"] = "👍", ["count"] = 2, ["me"] = true }), replayed["reactions"], "the replayed message");
        foreach (var who in new[] { alice.Name, bob.Name })
        {
            var change = JsonNode.Parse((await replay.NextOfAsync("reaction")).Data)!;
            Assert.Equal((who, true, 2), (change["username"].Str(), change["added"]!.GetValue<bool>(), change["count"]!.GetValue<int>()));
        }

        // Taking them back counts down to 0.
        await app.DeleteAsync(Url(message, "👍"), alice.Token, 204);
        await app.DeleteAsync(Url(message, "👍"), bob.Token, 204);
        var (one, none) = (await CountOfNextAsync(replay), await CountOfNextAsync(replay));
        Assert.Equal((1, 0), (one, none));
    }

    static async Task<int> CountOfNextAsync(SseClient stream) => JsonNode.Parse((await stream.NextOfAsync("reaction")).Data)!["count"]!.GetValue<int>();

    [Fact]
    public async Task Not_one_emoji_is_400_a_message_the_caller_cannot_see_is_404_and_too_many_is_429()
    {
        await using var app = await services.StartAppAsync(settings: [new("Conversations:MaxReactions", "6")]);
        var alice = await app.MemberAsync("ja");
        var bob = await app.MemberAsync("jb");
        var carol = await app.MemberAsync("jc");
        var group = await app.GroupAsync(alice, "bad reactions", bob);
        var message = await app.SendAsync(alice, group.Id(), "hi");

        foreach (var bad in new[] { "a", "%F0%9F", "%F0%9F%91%8D%F0%9F%91%8D", "%20", "%C0%AF", new string('9', 400) })
        {
            var problem = await (await PutAsync(app, $"/api/messages/{message.Id()}/reactions/{bad}", alice.Token, 400)).ProblemAsync(400);
            Assert.Equal(new[] { "emoji" }, Api.ErrorNames(problem));
        }
        await (await app.DeleteAsync($"/api/messages/{message.Id()}/reactions/a", alice.Token, 400)).ProblemAsync(400);
        await (await PutAsync(app, Url(message, "👍"), carol.Token, 404)).ProblemAsync(404);
        await (await app.DeleteAsync(Url(message, "👍"), carol.Token, 404)).ProblemAsync(404);
        await (await PutAsync(app, "/api/messages/abc/reactions/%F0%9F%91%8D", alice.Token, 404)).ProblemAsync(404);
        await PutAsync(app, Url(message, "👍"), null, 401);
        // Someone added later cannot react to what was said before they joined.
        await app.PostAsync($"/api/conversations/{Chat.Esc(group.Id())}/members", new { username = carol.Name }, alice.Token, 200);
        await (await PutAsync(app, Url(message, "👍"), carol.Token, 404)).ProblemAsync(404);

        for (var i = 0; i < 6; i++) await PutAsync(app, Url(message, "👍"), bob.Token, 204);
        var throttled = await PutAsync(app, Url(message, "👍"), bob.Token, 429);
        await throttled.ProblemAsync(429);
        Assert.True(int.Parse(throttled.Context.Response.Headers.RetryAfter.ToString()) >= 1);
    }
}
