using Ams.Tests.Support;

namespace Ams.Tests.Messaging;

/// <summary>GET /api/conversations/{id}/messages?before=&amp;limit=.</summary>
public sealed class HistoryTests(Services services) : IClassFixture<Services>
{
    static List<JsonObject> Messages(JsonObject page) => page["messages"]!.AsArray().Select(m => m!.AsObject()).ToList();

    [Fact]
    public async Task Seven_messages_by_three_are_pages_of_3_3_1_oldest_first_without_gaps_or_duplicates()
    {
        var app = await services.AppAsync();
        var alice = await app.MemberAsync("pa");
        var bob = await app.MemberAsync("pb");
        var direct = await app.DirectAsync(alice, bob);
        var sent = new List<JsonObject>();
        for (var i = 1; i <= 7; i++)
            sent.Add(await app.SendAsync(i % 2 == 0 ? bob : alice, direct.Id(), $"m{i}"));

        var first = await app.PageAsync(bob, direct.Id(), "limit=3");
        Assert.Equal(new[] { "m5", "m6", "m7" }, Chat.Bodies(Messages(first)));
        var cursor1 = first["nextBefore"]?.GetValue<string>();
        Assert.False(string.IsNullOrEmpty(cursor1), $"nextBefore missing on a full first page: {first.ToJsonString()}");

        var second = await app.PageAsync(bob, direct.Id(), $"before={Chat.Esc(cursor1!)}&limit=3");
        Assert.Equal(new[] { "m2", "m3", "m4" }, Chat.Bodies(Messages(second)));
        var cursor2 = second["nextBefore"]?.GetValue<string>();
        Assert.False(string.IsNullOrEmpty(cursor2), $"nextBefore missing on a full second page: {second.ToJsonString()}");

        var third = await app.PageAsync(bob, direct.Id(), $"before={Chat.Esc(cursor2!)}&limit=3");
        Assert.Equal(new[] { "m1" }, Chat.Bodies(Messages(third)));
        Assert.Null(third["nextBefore"]);

        var all = Messages(third).Concat(Messages(second)).Concat(Messages(first)).ToList();
        Assert.Equal(sent.Select(m => m.Id()), all.Select(m => m.Id()));
        for (var i = 0; i < sent.Count; i++) Chat.SameJson(sent[i], all[i], $"m{i + 1} as paged");
    }

    [Fact]
    public async Task A_page_that_reaches_the_start_has_no_nextBefore()
    {
        var app = await services.AppAsync();
        var alice = await app.MemberAsync("na");
        var bob = await app.MemberAsync("nb");
        var direct = await app.DirectAsync(alice, bob);

        var empty = await app.PageAsync(alice, direct.Id());
        Assert.Empty(Messages(empty));
        Assert.Null(empty["nextBefore"]);

        await app.SendAsync(alice, direct.Id(), "one");
        await app.SendAsync(bob, direct.Id(), "two");
        var page = await app.PageAsync(alice, direct.Id(), "limit=5");
        Assert.Equal(new[] { "one", "two" }, Chat.Bodies(Messages(page)));
        Assert.Null(page["nextBefore"]);
        var exact = await app.PageAsync(alice, direct.Id(), "limit=2");   // as many left as asked for
        Assert.Equal(new[] { "one", "two" }, Chat.Bodies(Messages(exact)));
        Assert.Null(exact["nextBefore"]);
    }

    [Fact]
    public async Task The_default_limit_is_50_newest_first_page()
    {
        var app = await services.AppAsync();
        var owner = await app.MemberAsync("da");
        var others = await app.MembersAsync(4, "db");
        var group = await app.GroupAsync(owner, "fifty-five", others);
        var senders = others.Prepend(owner).ToArray();
        for (var i = 1; i <= 55; i++)
            await app.SendAsync(senders[i % senders.Length], group.Id(), $"n{i}");

        var page = await app.PageAsync(owner, group.Id());
        var bodies = Chat.Bodies(Messages(page));
        Assert.Equal(Enumerable.Range(6, 50).Select(i => $"n{i}"), bodies);
        var cursor = page["nextBefore"]?.GetValue<string>();
        Assert.False(string.IsNullOrEmpty(cursor), $"nextBefore missing with 5 older messages left: {page.ToJsonString()}");

        var rest = await app.PageAsync(owner, group.Id(), $"before={Chat.Esc(cursor!)}");
        Assert.Equal(Enumerable.Range(1, 5).Select(i => $"n{i}"), Chat.Bodies(Messages(rest)));
        Assert.Null(rest["nextBefore"]);

        var max = await app.PageAsync(owner, group.Id(), "limit=100");
        Assert.Equal(55, Messages(max).Count);
        var one = await app.PageAsync(owner, group.Id(), "limit=1");
        Assert.Equal(new[] { "n55" }, Chat.Bodies(Messages(one)));

        // The browser's "load older": the same pages as message fragments, oldest first, after a
        // button for the page before while there is one.
        var stranger = await app.MemberAsync("dz");
        async Task<(int Status, string? Type, string Html)> OlderAsync(Member who, string path)
        {
            var result = await app.Scenario(s =>
            {
                s.Get.Url(path);
                s.WithRequestHeader("Cookie", $"ams_session={who.Token}");
                s.IgnoreStatusCode();
            });
            return (result.Context.Response.StatusCode, result.Context.Response.ContentType, await result.ReadAsTextAsync());
        }
        var newest = await OlderAsync(owner, $"/c/{group.Id()}/older");
        Assert.Equal((200, "text/html; charset=utf-8"), (newest.Status, newest.Type));
        Assert.StartsWith($"""<li id="older" data-older="/c/{group.Id()}/older?before={cursor}"><button type="button">Load older messages</button></li>""", newest.Html);
        Assert.Equal(Enumerable.Range(6, 50).Select(i => $"n{i}"), Bodies(newest.Html));
        var oldest = await OlderAsync(owner, $"/c/{group.Id()}/older?before={cursor}");
        Assert.Equal(Enumerable.Range(1, 5).Select(i => $"n{i}"), Bodies(oldest.Html));
        Assert.DoesNotContain("id=\"older\"", oldest.Html);
        var n51 = Messages(max)[50].Id();
        Assert.Equal("n51", Messages(max)[50]["body"].Str());
        var exactlyAPage = await OlderAsync(owner, $"/c/{group.Id()}/older?before={Chat.Esc(n51)}");
        Assert.Equal(Enumerable.Range(1, 50).Select(i => $"n{i}"), Bodies(exactlyAPage.Html));
        Assert.DoesNotContain("id=\"older\"", exactlyAPage.Html);
        foreach (var (who, path) in new[] { (stranger, $"/c/{group.Id()}/older"), (owner, $"/c/{group.Id()}/older?before=abc"), (owner, "/c/abc/older") })
            Assert.Equal(404, (await OlderAsync(who, path)).Status);
    }

    // The bodies in the order the fragments show them.
    static IEnumerable<string> Bodies(string html) =>
        System.Text.RegularExpressions.Regex.Matches(html, @">(n\d+)<").Select(m => m.Groups[1].Value);

    const string LimitReason = "limit must be a whole number from 1 to 100.", BeforeReason = "before must be a message id.";

    [Theory]
    [InlineData("limit=0", "limit", LimitReason)]
    [InlineData("limit=101", "limit", LimitReason)]
    [InlineData("limit=-1", "limit", LimitReason)]
    [InlineData("limit=1000000", "limit", LimitReason)]
    [InlineData("limit=abc", "limit", LimitReason)]
    [InlineData("limit=99999999999999999999", "limit", LimitReason)]
    [InlineData("before=abc", "before", BeforeReason)]
    [InlineData("before=", "before", BeforeReason)]
    public async Task A_limit_outside_1_to_100_or_a_before_that_is_no_message_id_is_400_saying_which(string query, string name, string reason)
    {
        var app = await services.AppAsync();
        var alice = await app.MemberAsync("la");
        var bob = await app.MemberAsync("lb");
        var direct = await app.DirectAsync(alice, bob);
        await app.SendAsync(alice, direct.Id(), "hi");
        var result = await app.GetAsync($"/api/conversations/{Chat.Esc(direct.Id())}/messages?{query}", alice.Token, 400);
        var error = Assert.Single((await result.ProblemAsync(400))["errors"]!.AsArray())!;
        Assert.Equal(name, error["name"].Str());
        Assert.Equal(reason, error["reason"].Str());
    }

    [Fact]
    public async Task A_before_id_from_another_conversation_leaks_nothing()
    {
        var app = await services.AppAsync();
        var alice = await app.MemberAsync("ba");
        var bob = await app.MemberAsync("bb");
        var carol = await app.MemberAsync("bc");
        var mine = await app.DirectAsync(alice, bob);
        var theirs = await app.DirectAsync(bob, carol);   // alice is not in this one
        var ownBodies = new List<string>();
        for (var i = 0; i < 3; i++)
        {
            ownBodies.Add($"alice-bob {i}");
            await app.SendAsync(alice, mine.Id(), ownBodies[^1]);
        }
        var secrets = new List<JsonObject>();
        for (var i = 0; i < 3; i++) secrets.Add(await app.SendAsync(carol, theirs.Id(), $"bob-carol secret {i}"));
        await app.SendAsync(alice, mine.Id(), "alice-bob late");
        ownBodies.Add("alice-bob late");

        foreach (var foreign in secrets)
        {
            foreach (var query in new[] { $"before={Chat.Esc(foreign.Id())}", $"before={Chat.Esc(foreign.Id())}&limit=100" })
            {
                var result = await app.GetAsync($"/api/conversations/{Chat.Esc(mine.Id())}/messages?{query}", alice.Token, null);
                var text = await result.ReadAsTextAsync();
                Assert.True(result.Status() is 200 or 400 or 404, $"before=<foreign id>: status {result.Status()}: {text}");
                Assert.DoesNotContain("secret", text);
                if (result.Status() == 200)
                    foreach (var message in Messages(JsonNode.Parse(text)!.AsObject()))
                    {
                        Assert.Equal(mine.Id(), message["conversationId"].Str());
                        Assert.Contains(message["body"].Str(), ownBodies);
                    }
                else
                    await result.ProblemAsync(result.Status());
            }
        }
        // Carol, who is in the other conversation, gets nothing out of alice's by borrowing her own ids.
        var probe = await app.GetAsync($"/api/conversations/{Chat.Esc(mine.Id())}/messages?before={Chat.Esc(secrets[2].Id())}", carol.Token, 404);
        Assert.DoesNotContain("alice-bob", await probe.ReadAsTextAsync());
    }

    [Theory]
    [InlineData("abc")]
    [InlineData("0")]
    [InlineData("-1")]
    [InlineData("99999999999999999999999999")]
    public async Task A_garbage_before_is_never_a_500(string before)
    {
        var app = await services.AppAsync();
        var alice = await app.MemberAsync("ga");
        var bob = await app.MemberAsync("gb");
        var direct = await app.DirectAsync(alice, bob);
        await app.SendAsync(alice, direct.Id(), "visible");
        var result = await app.GetAsync($"/api/conversations/{Chat.Esc(direct.Id())}/messages?before={Chat.Esc(before)}", alice.Token, null);
        Assert.True(result.Status() is 200 or 400 or 404, $"before={before}: status {result.Status()}: {await result.ReadAsTextAsync()}");
        if (result.Status() != 200) await result.ProblemAsync(result.Status());
    }

    [Fact]
    public async Task History_is_404_for_strangers_and_missing_conversations_alike()
    {
        var app = await services.AppAsync();
        var alice = await app.MemberAsync("ha");
        var bob = await app.MemberAsync("hb");
        var eve = await app.MemberAsync("he");
        var direct = await app.DirectAsync(alice, bob);
        await app.SendAsync(alice, direct.Id(), "private words");

        var url = $"/api/conversations/{Chat.Esc(direct.Id())}/messages";
        foreach (var query in new[] { "", "?limit=100", "?limit=0" })
        {
            var result = await app.GetAsync(url + query, eve.Token, null);
            Assert.True(result.Status() == 404 || (query == "?limit=0" && result.Status() == 400),
                $"stranger GET {query}: status {result.Status()}");
            Assert.DoesNotContain("private words", await result.ReadAsTextAsync());
        }
        var stranger = await (await app.GetAsync(url, eve.Token, 404)).ProblemAsync(404);
        var missing = await (await app.GetAsync("/api/conversations/abc/messages", alice.Token, 404)).ProblemAsync(404);
        Chat.SameJson(Chat.WithoutRequestParts(stranger), Chat.WithoutRequestParts(missing), "non-member vs missing conversation");
    }

    [Fact]
    public async Task A_node_that_has_not_seen_the_data_keys_reads_them_in_one_query_per_page_not_one_connection_each()
    {
        // Every message and attachment has a data key of its own; a node that has not cached them
        // (just started, or the streams of a dead node resuming here) must not take a pooled
        // connection per key.
        const string database = "history_cold_keys";
        using var pool = new PoolUsage(database);
        await using var writer = await services.StartAppAsync(database);
        var (alice, bob) = (await writer.MemberAsync("ka"), await writer.MemberAsync("kb"));
        var direct = await writer.DirectAsync(alice, bob);
        var uploads = new List<string>();
        for (var i = 0; i < 5; i++) uploads.Add((await Ams.Tests.Attachments.Files.UploadAsync(writer, alice, "hello"u8.ToArray(), $"notes{i}.txt")).Id());
        await writer.PostAsync("/api/messages", new { conversationId = direct.Id(), body = "with files", attachments = uploads }, alice.Token, 201);
        for (var i = 0; i < 30; i++) await writer.SendAsync(alice, direct.Id(), $"cold {i}");
        await using var reader = await services.StartAppAsync(database);
        await reader.PageAsync(bob, direct.Id(), "limit=1");   // the session and the user, as any request has them

        var before = pool.Takes;
        var page = await reader.PageAsync(bob, direct.Id(), "limit=50");
        var takes = pool.Takes - before;

        var messages = Messages(page);
        Assert.Equal(31, messages.Count);
        Assert.Equal(Enumerable.Range(0, 30).Select(i => $"cold {i}").Prepend("with files"), messages.Select(m => m["body"].Str()));
        Assert.Equal(Enumerable.Range(0, 5).Select(i => $"notes{i}.txt"), messages[0]["attachments"]!.AsArray().Select(a => a!["name"].Str()));
        // The page's own connection, and one for the node's background work at most: not one per key (37).
        Assert.True(takes is >= 1 and <= 2, $"{takes} connections taken from the pool");
    }
}
