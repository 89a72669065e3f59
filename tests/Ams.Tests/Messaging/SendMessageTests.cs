using System.Globalization;
using System.Text.Json.Nodes;
using Ams.Tests.Support;

namespace Ams.Tests.Messaging;

/// <summary>POST /api/messages.</summary>
public sealed class SendMessageTests(Services services) : IClassFixture<Services>
{
    const string Timestamp = @"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,7})?Z$";

    [Fact]
    public async Task Sending_into_a_conversation_is_201_with_the_message()
    {
        var app = await services.AppAsync();
        var alice = await app.MemberAsync("sa", "Alice Sender");
        var bob = await app.MemberAsync("sb");
        var direct = await app.DirectAsync(alice, bob);
        var before = DateTimeOffset.UtcNow;

        var result = await app.PostAsync("/api/messages", new { conversationId = direct.Id(), body = "hello bob" }, alice.Token, 201);

        Assert.StartsWith("application/json", result.Context.Response.ContentType);
        var message = (await result.JsonAsync()).AsObject();
        Assert.False(string.IsNullOrEmpty(message["id"]?.GetValue<string>()), message.ToJsonString());
        Assert.Equal(direct.Id(), message["conversationId"].Str());
        Assert.Equal(alice.Name, message["sender"]!["username"].Str());
        Assert.Equal("Alice Sender", message["sender"]!["displayName"].Str());
        Assert.Equal("hello bob", message["body"].Str());
        Assert.Equal("os", message["entropy"].Str());
        var sentAt = message["sentAt"].Str();
        Assert.Matches(Timestamp, sentAt);
        var when = DateTimeOffset.Parse(sentAt, CultureInfo.InvariantCulture);
        Assert.InRange(when, before.AddSeconds(-5), DateTimeOffset.UtcNow.AddSeconds(5));

        Chat.SameJson(message, Assert.Single(await app.HistoryAsync(bob, direct.Id())), "bob's history");
        Chat.SameJson(message, Assert.Single(await app.HistoryAsync(alice, direct.Id())), "alice's history");
    }

    [Fact]
    public async Task Every_script_and_emoji_come_back_as_written_in_responses_and_on_the_event_stream_and_html_characters_stay_escaped()
    {
        var app = await services.AppAsync();
        var alice = await app.MemberAsync("ua");
        var bob = await app.MemberAsync("ub");
        var direct = await app.DirectAsync(alice, bob);
        await using var stream = await SseClient.OpenAsync(app, bob.Token);
        const string Text = "Привет 👍🏽 中文 é";
        const string Body = Text + " <b>&'";
        // What the built-in encoders write for <b>&' (and still should: defence in depth).
        const string HtmlEscaped = @"\u003Cb\u003E\u0026\u0027";

        var sent = await (await app.PostAsync("/api/messages", new { conversationId = direct.Id(), body = Body }, alice.Token, 201)).ReadAsTextAsync();
        var page = await (await app.GetAsync($"/api/conversations/{direct.Id()}/messages", bob.Token, 200)).ReadAsTextAsync();
        SseEvent? live;
        do live = await stream.NextAsync(); while (live is { Event: not "message" });

        foreach (var (what, json) in new[] { ("the 201", sent), ("history", page), ("the event stream", live!.Data) })
        {
            Assert.True(json.Contains(Text + " " + HtmlEscaped, StringComparison.Ordinal), $"{what}: {json}");
            Assert.DoesNotContain("<b>", json, StringComparison.Ordinal);
        }
        Assert.Equal(Body, JsonNode.Parse(live.Data)!["body"].Str());
    }

    [Fact]
    public async Task Sending_to_a_username_opens_the_direct_conversation_and_reuses_it_afterwards()
    {
        var app = await services.AppAsync();
        var alice = await app.MemberAsync("oa");
        var bob = await app.MemberAsync("ob");

        var first = await app.SendToAsync(alice, bob, "first contact");
        var id = first["conversationId"].Str();
        var conversation = await app.ConversationAsync(bob, id);
        Assert.Equal("direct", conversation["kind"].Str());
        Assert.Equal(Chat.Names(alice, bob), conversation.MemberNames());

        var second = await app.SendToAsync(alice, bob, "second");
        var reply = await app.SendToAsync(bob, alice, "reply");
        Assert.Equal(id, second["conversationId"].Str());
        Assert.Equal(id, reply["conversationId"].Str());
        Assert.Equal(id, (await app.OpenAsync(alice, null, 200, bob)).Id());
        Assert.Equal(new[] { "first contact", "second", "reply" }, Chat.Bodies(await app.HistoryAsync(alice, id)));
        Assert.Single(await app.InboxAsync(alice));
        Assert.Single(await app.InboxAsync(bob));
    }

    [Fact]
    public async Task Sending_to_a_username_reuses_a_direct_conversation_opened_with_POST_conversations()
    {
        var app = await services.AppAsync();
        var alice = await app.MemberAsync("ra");
        var bob = await app.MemberAsync("rb");
        var direct = await app.DirectAsync(bob, alice);
        var message = await app.SendToAsync(alice, bob, "found it");
        Assert.Equal(direct.Id(), message["conversationId"].Str());
        // A two-person group is not the direct conversation.
        var pair = await app.OpenAsync(alice, "pair", 201, bob);
        Assert.Equal(direct.Id(), (await app.SendToAsync(bob, alice, "still direct"))["conversationId"].Str());
        Assert.Empty(await app.HistoryAsync(alice, pair.Id()));
    }

    [Fact]
    public async Task Sending_to_yourself_is_refused_and_creates_nothing()
    {
        var app = await services.AppAsync();
        var alice = await app.MemberAsync("ya");
        var result = await app.PostAsync("/api/messages", new { to = alice.Name, body = "note to self" }, alice.Token, null);
        Assert.Contains(result.Status(), new[] { 400, 404 });
        await result.ProblemAsync(result.Status());
        Assert.Empty(await app.InboxAsync(alice));
    }

    [Theory]
    [InlineData("""{"conversationId":"{id}","body":""}""")]
    [InlineData("""{"conversationId":"{id}"}""")]
    [InlineData("""{"conversationId":"{id}","body":null}""")]
    [InlineData("""{"to":"{other}","body":""}""")]
    [InlineData("""{"to":"{other}"}""")]
    public async Task An_empty_or_missing_body_is_400_with_the_field_named(string template)
    {
        var app = await services.AppAsync();
        var alice = await app.MemberAsync("ea");
        var bob = await app.MemberAsync("eb");
        var direct = await app.DirectAsync(alice, bob);
        var result = await app.PostRawAsync("/api/messages", template.Replace("{id}", direct.Id()).Replace("{other}", bob.Name), alice.Token, 400);
        Assert.Contains("body", Api.ErrorNames(await result.ProblemAsync(400)));
        Assert.Empty(await app.HistoryAsync(bob, direct.Id()));
    }

    [Theory]
    [InlineData("x")]
    [InlineData("é")]     // 2 UTF-8 bytes, 1 UTF-16 unit
    [InlineData("漢")]    // 3 UTF-8 bytes
    [InlineData("🦊")]    // 4 UTF-8 bytes, 2 UTF-16 units
    public async Task Bodies_are_limited_to_4000_characters_counted_as_characters(string unit)
    {
        var app = await services.AppAsync();
        var alice = await app.MemberAsync("ka");
        var bob = await app.MemberAsync("kb");
        var direct = await app.DirectAsync(alice, bob);
        var max = string.Concat(Enumerable.Repeat(unit, 4000));

        var ok = await app.SendAsync(alice, direct.Id(), max);
        Assert.Equal(max, ok["body"].Str());

        var tooLong = await app.PostAsync("/api/messages", new { conversationId = direct.Id(), body = max + unit }, alice.Token, 400);
        Assert.Contains("body", Api.ErrorNames(await tooLong.ProblemAsync(400)));
        var byTo = await app.PostAsync("/api/messages", new { to = bob.Name, body = max + "x" }, alice.Token, 400);
        await byTo.ProblemAsync(400);

        Chat.SameJson(ok, Assert.Single(await app.HistoryAsync(bob, direct.Id())), "history after one good and two refused sends");
    }

    [Fact]
    public async Task A_mixed_emoji_body_of_exactly_4000_characters_is_accepted()
    {
        var app = await services.AppAsync();
        var alice = await app.MemberAsync("ma");
        var bob = await app.MemberAsync("mb");
        var body = string.Concat(Enumerable.Repeat("a🦊é😀", 1000));   // 4000 characters, 6000 UTF-16 units
        Assert.Equal(4000, body.EnumerateRunes().Count());
        var message = await app.SendToAsync(alice, bob, body);
        Assert.Equal(body, message["body"].Str());
        Assert.Equal(body, Assert.Single(await app.HistoryAsync(bob, message["conversationId"].Str()))["body"].Str());
    }

    [Theory]
    [InlineData("""{"body":"nowhere"}""", "Give conversationId or to: where the message goes.")]
    [InlineData("""{"conversationId":"{id}","to":"{other}","body":"both"}""", "Give either conversationId or to, not both.")]
    [InlineData("""{"conversationId":null,"to":null,"body":"nulls"}""", "Give conversationId or to: where the message goes.")]
    [InlineData("""{"conversationId":"","body":"empty id"}""", "Give conversationId or to: where the message goes.")]
    [InlineData("""{"to":"","body":"empty to"}""", "Give conversationId or to: where the message goes.")]
    public async Task Exactly_one_of_conversationId_and_to_is_required(string template, string reason)
    {
        var app = await services.AppAsync();
        var alice = await app.MemberAsync("qa");
        var bob = await app.MemberAsync("qb");
        var direct = await app.DirectAsync(alice, bob);
        var result = await app.PostRawAsync("/api/messages", template.Replace("{id}", direct.Id()).Replace("{other}", bob.Name), alice.Token, 400);
        var problem = await result.ProblemAsync(400);
        Assert.Equal(reason, Assert.Single(problem["errors"]!.AsArray())!["reason"].Str());
        Assert.Empty(await app.HistoryAsync(alice, direct.Id()));
    }

    [Theory]
    [InlineData("""{"conversationId":""")]
    [InlineData("""not json""")]
    [InlineData("""{"to":42,"body":"x"}""")]
    [InlineData("""{"to":"{other}","body":["a"]}""")]
    [InlineData("""{"to":"{other}","body":{"text":"a"}}""")]
    [InlineData("""{"to":"{other}","body":12}""")]
    [InlineData("""{"conversationId":{"id":1},"body":"x"}""")]
    [InlineData("""[]""")]
    [InlineData("")]
    [InlineData("""{"to":"{other}","body":"bad \ud800 surrogate"}""")]
    [InlineData("""{"to":"{other}","body":"a\u0000b"}""")]
    [InlineData("""{"to":"{other}","body":"\u001b[2J\u001b[31mred"}""")]   // a terminal's escape sequence, for scripts that print messages
    [InlineData("""{"to":"{other}","body":"next\u0085line"}""")]
    [InlineData("""{"to":"{other}","body":"del\u007f"}""")]
    [InlineData("""{"to":"{other}","body":"\u200b"}""")]   // nothing visible: zero-width space, BOM, word joiner
    [InlineData("""{"to":"{other}","body":"\ufeff\u200b\u2060 "}""")]
    public async Task Malformed_json_wrong_types_and_invalid_text_are_400(string template)
    {
        var app = await services.AppAsync();
        var alice = await app.MemberAsync("ja");
        var bob = await app.MemberAsync("jb");
        var result = await app.PostRawAsync("/api/messages", template.Replace("{other}", bob.Name), alice.Token, 400);
        await result.ProblemAsync(400);
        Assert.Empty(await app.InboxAsync(bob));
    }

    [Fact]
    public async Task A_control_character_in_a_body_is_400_naming_it_while_tab_and_line_breaks_are_kept()
    {
        var app = await services.AppAsync();
        var alice = await app.MemberAsync("ca");
        var bob = await app.MemberAsync("cb");
        var refused = await (await app.PostAsync("/api/messages", new { to = bob.Name, body = "\u001b]0;owned\u0007" }, alice.Token, 400)).ProblemAsync(400);
        Assert.Equal(Features.SendMessage.Validator.NoControls, refused["detail"].Str());
        var kept = await app.SendAsync(alice, (await app.DirectAsync(alice, bob)).Id(), "a\tb\nc\r\nd");
        Assert.Equal("a\tb\nc\r\nd", kept["body"].Str());
    }

    [Fact]
    public async Task Unknown_fields_are_ignored_and_cannot_forge_the_sender_id_or_time()
    {
        var app = await services.AppAsync();
        var alice = await app.MemberAsync("fa");
        var bob = await app.MemberAsync("fb");
        var direct = await app.DirectAsync(alice, bob);
        var json = $$$"""
            {"conversationId":"{{{direct.Id()}}}","body":"genuine","id":"1","sender":{"username":"{{{bob.Name}}}","displayName":"Bob"},
             "senderId":1,"sentAt":"2000-01-01T00:00:00.000Z","entropy":"random.org+os","extra":{"a":[1]}}
            """;
        var message = (await (await app.PostRawAsync("/api/messages", json, alice.Token, 201)).JsonAsync()).AsObject();
        Assert.Equal(alice.Name, message["sender"]!["username"].Str());
        Assert.Equal("os", message["entropy"].Str());
        Assert.StartsWith(DateTime.UtcNow.Year.ToString(CultureInfo.InvariantCulture), message["sentAt"].Str());
        Chat.SameJson(message, Assert.Single(await app.HistoryAsync(bob, direct.Id())), "history");
    }

    [Fact]
    public async Task A_request_over_64_KiB_is_413_and_nothing_is_stored()
    {
        var app = await services.AppAsync();
        var alice = await app.MemberAsync("ba");
        var bob = await app.MemberAsync("bb");
        var direct = await app.DirectAsync(alice, bob);
        var json = $$"""{"conversationId":"{{direct.Id()}}","body":"{{new string('x', 70_000)}}"}""";
        await (await app.PostRawAsync("/api/messages", json, alice.Token, 413)).ProblemAsync(413);
        Assert.Empty(await app.HistoryAsync(bob, direct.Id()));
    }

    [Fact]
    public async Task Unknown_recipients_and_conversations_are_404_problems()
    {
        var app = await services.AppAsync();
        var alice = await app.MemberAsync("wa");
        var bob = await app.MemberAsync("wb");
        var direct = await app.DirectAsync(alice, bob);
        var id = direct.Id();

        await (await app.PostAsync("/api/messages", new { to = Api.UniqueName("ghost"), body = "boo" }, alice.Token, 404)).ProblemAsync(404);
        var missing = id[..^1] + (id[^1] == '1' ? '2' : '1');
        foreach (var other in new[] { missing, "abc", "0" })
            await (await app.PostAsync("/api/messages", new { conversationId = other, body = "anyone?" }, alice.Token, 404)).ProblemAsync(404);
        Assert.Single(await app.InboxAsync(alice));
    }

    [Fact]
    public async Task A_stranger_cannot_send_into_a_conversation_and_gets_the_same_404_as_for_a_missing_one()
    {
        var app = await services.AppAsync();
        var alice = await app.MemberAsync("xa");
        var bob = await app.MemberAsync("xb");
        var mallory = await app.MemberAsync("xm");
        var group = await app.GroupAsync(alice, "no mallory", bob);

        var intrusion = await app.PostAsync("/api/messages", new { conversationId = group.Id(), body = "mallory was here" }, mallory.Token, 404);
        var problem = await intrusion.ProblemAsync(404);
        var missing = await app.PostAsync("/api/messages", new { conversationId = "abc", body = "mallory was here" }, mallory.Token, 404);
        Chat.SameJson(Chat.WithoutRequestParts(problem), Chat.WithoutRequestParts(await missing.ProblemAsync(404)), "non-member vs missing conversation");

        Assert.Empty(await app.HistoryAsync(alice, group.Id()));
        Assert.Null((await app.ConversationAsync(bob, group.Id()))["lastMessage"]);
        Assert.Empty(await app.InboxAsync(mallory));
    }

    [Fact]
    public async Task History_order_is_send_order_and_ids_are_distinct()
    {
        var app = await services.AppAsync();
        var alice = await app.MemberAsync("pa");
        var bob = await app.MemberAsync("pb");
        var direct = await app.DirectAsync(alice, bob);
        var sent = new List<JsonObject>();
        for (var i = 0; i < 12; i++)
            sent.Add(await app.SendAsync(i % 3 == 0 ? bob : alice, direct.Id(), $"message {i}"));

        Assert.Equal(sent.Count, sent.Select(m => m.Id()).Distinct().Count());
        var history = await app.HistoryAsync(alice, direct.Id());
        Assert.Equal(sent.Select(m => m.Id()), history.Select(m => m.Id()));
        Assert.Equal(sent.Select(m => m["body"].Str()), Chat.Bodies(history));
        for (var i = 0; i < sent.Count; i++) Chat.SameJson(sent[i], history[i], $"message {i} in history");
        var times = history.Select(m => DateTimeOffset.Parse(m["sentAt"].Str(), CultureInfo.InvariantCulture)).ToList();
        Assert.Equal(times.Order(), times);
    }

    public static TheoryData<string> Payloads => new()
    {
        "<script>alert(1)</script>",
        "\"'><img src=x onerror=alert(1)>",
        "</textarea><svg/onload=alert(1)>&amp;&lt;&#x3C;",
        "line one\nline two\r\nline three\ttabbed",
        "Ünïcødé 漢字 🦊👩‍👩‍👧 \u202Eevil\u202C ﷽",
        "{{7*7}} ${7*7} <%= 7*7 %> %s%n",
        "'; DROP TABLE messages; -- \\ \" `",
        "  leading and trailing spaces  ",
        "\\u003cscript\\u003e literally escaped",
    };

    [Theory]
    [MemberData(nameof(Payloads))]
    public async Task Hostile_bodies_come_back_exactly_as_sent(string body)
    {
        var app = await services.AppAsync();
        var alice = await app.MemberAsync("ha");
        var bob = await app.MemberAsync("hb");
        var sent = await app.SendToAsync(alice, bob, body);
        Assert.Equal(body, sent["body"].Str());
        var id = sent["conversationId"].Str();

        var page = await app.GetAsync($"/api/conversations/{Chat.Esc(id)}/messages", bob.Token, 200);
        Assert.StartsWith("application/json", page.Context.Response.ContentType);
        Assert.Equal(body, (await page.JsonAsync())["messages"]![0]!["body"].Str());
        Assert.Equal(body, (await app.InboxEntryAsync(bob, id))!["lastMessage"]!["body"].Str());
        Assert.Equal(body, (await app.ConversationAsync(bob, id))["lastMessage"]!["body"].Str());
    }

    [Theory]
    [InlineData("<script>alert(1)</script>")]
    [InlineData("\"'><img src=x onerror=alert(1)>")]
    [InlineData("Zoë 🦊 &amp; &lt;b&gt;")]
    public async Task Hostile_display_names_come_back_exactly_as_registered(string displayName)
    {
        var app = await services.AppAsync();
        var alice = await app.MemberAsync("na", displayName);
        var bob = await app.MemberAsync("nb");
        var group = await app.GroupAsync(alice, displayName, bob);
        Assert.Equal(displayName, group["title"].Str());
        Assert.Equal(displayName, group["members"]!.AsArray().Single(m => m!["username"].Str() == alice.Name)!["displayName"].Str());

        var sent = await app.SendAsync(alice, group.Id(), "hi");
        Assert.Equal(displayName, sent["sender"]!["displayName"].Str());
        var seen = Assert.Single(await app.HistoryAsync(bob, group.Id()));
        Assert.Equal(displayName, seen["sender"]!["displayName"].Str());
        var entry = (await app.InboxEntryAsync(bob, group.Id()))!;
        Assert.Equal(displayName, entry["title"].Str());
        Assert.Equal(displayName, entry["lastMessage"]!["sender"]!["displayName"].Str());
    }
}
