using Ams.Infrastructure;
using Ams.Infrastructure.Crypto;
using Ams.Infrastructure.Messaging;
using Ams.Tests.Support;
using MySqlConnector;
using Microsoft.Extensions.DependencyInjection;

namespace Ams.Tests.Messaging;

/// <summary>PATCH /api/messages/{id}: the sender's edit, re-sealed under a new key, live and replayed on every node.</summary>
public sealed class EditMessageTests(Services services) : IClassFixture<Services>
{
    static string Url(string id) => $"/api/messages/{Chat.Esc(id)}";


    [Fact]
    public async Task Messages_read_just_before_an_edit_or_delete_commits_show_as_they_are_now_not_undecryptable()
    {
        var node1 = await services.AppAsync();
        var alice = await node1.MemberAsync("ta");
        var bob = await node1.MemberAsync("tb");
        var group = await node1.GroupAsync(alice, "torn", bob);
        var edited = await node1.SendAsync(alice, group.Id(), "before the edit");
        var deleted = await node1.SendAsync(alice, group.Id(), "before the delete");
        var kept = await node1.SendAsync(bob, group.Id(), "untouched");
        // A node that has not cached the keys reads the rows, then the edit and the delete commit
        // (destroying the keys those rows are sealed under) before it opens them.
        await using var node2 = await services.StartAppAsync();
        await using var connection = await node2.Services.GetRequiredService<MariaDb>().OpenConnectionAsync();
        var rows = new List<MessageRow>();
        await using (var select = new MySqlCommand(
            $"SELECT {MessageRow.Columns} FROM messages m JOIN users u ON u.id = m.sender_id WHERE m.id IN ({edited.Id()}, {deleted.Id()}, {kept.Id()}) ORDER BY m.id", connection))
        await using (var reader = await select.ExecuteReaderAsync())
            while (await reader.ReadAsync())
                rows.Add(new MessageRow
                {
                    Id = reader.GetInt64("Id"), ConversationId = reader.GetInt64("ConversationId"), SenderId = reader.GetInt64("SenderId"),
                    Body = (byte[])reader["Body"], Entropy = reader.GetString("Entropy"), SentAt = reader.GetDateTime("SentAt"),
                    SenderUsername = reader.GetString("SenderUsername"), SenderDisplayName = reader.GetString("SenderDisplayName"),
                });
        await node1.PatchAsync(Url(edited.Id()), new { body = "after the edit" }, alice.Token, 200);
        await node1.DeleteAsync(Url(deleted.Id()), alice.Token, 204);

        var views = await MessageRow.ToViewsAsync(connection, node2.Services.GetRequiredService<Envelope>(), rows);

        Assert.Equal([edited.Id(), deleted.Id(), kept.Id()], views.Select(v => v.Id));
        Assert.Equal("after the edit", views[0].Body);
        Assert.NotNull(views[0].EditedAt);
        Assert.True(views[1].Deleted);
        Assert.Null(views[1].Body);
        Assert.Equal("untouched", views[2].Body);
    }

    [Fact]
    public async Task Reads_on_the_node_that_edits_never_show_the_message_as_undecryptable()
    {
        // The editing node forgets the old key once the edit commits: a read there that had just
        // found the key held then missed it when opening the body (an outside drill: 575 of 4,612).
        var app = await services.AppAsync();
        var alice = await app.MemberAsync("tn");
        var bob = await app.MemberAsync("to");
        var direct = await app.DirectAsync(alice, bob);
        var message = await app.SendAsync(alice, direct.Id(), "edit 0");
        var editing = Task.Run(async () =>
        {
            for (var i = 1; i <= 120; i++) await app.PatchAsync(Url(message.Id()), new { body = $"edit {i}" }, alice.Token, 200);
        });
        var bodies = new List<string?>();
        while (!editing.IsCompleted)
        {
            var reads = Enumerable.Range(0, 4).Select(async _ => (await (await app.GetAsync(Url(message.Id()), bob.Token, 200)).JsonAsync())["body"]?.GetValue<string>());
            bodies.AddRange(await Task.WhenAll(reads));
        }
        await editing;
        Assert.True(bodies.Count > 100, $"{bodies.Count} reads");
        Assert.DoesNotContain(null, bodies);
        Assert.All(bodies, b => Assert.StartsWith("edit ", b));
    }

    [Fact]
    public async Task An_edit_reseals_the_body_under_a_new_key_destroys_the_old_one_and_reaches_members_on_another_node_live_and_replayed()
    {
        var node1 = await services.AppAsync();
        await using var node2 = await services.StartAppAsync();
        var alice = await node1.MemberAsync("ea");
        var bob = await node1.MemberAsync("eb");
        var group = await node1.GroupAsync(alice, "edits", bob);
        var message = await node1.SendAsync(alice, group.Id(), "the first words");
        var later = await node1.SendAsync(bob, group.Id(), "a reply");
        var oldKey = await services.ScalarAsync($"SELECT HEX(SUBSTRING(body, 2, 16)) FROM messages WHERE id = {message.Id()}");
        Assert.Equal("1", await services.ScalarAsync($"SELECT COUNT(*) FROM data_keys WHERE id = UNHEX('{oldKey}')"));
        await using var stream = await SseClient.OpenAsync(node2, bob.Token);
        await using var html = await SseClient.OpenAsync(node2, bob.Token, path: "/events");

        var edited = (await (await node1.PatchAsync(Url(message.Id()), new { body = "better <b>words</b> 🦊" }, alice.Token, 200)).JsonAsync()).AsObject();
        Assert.Equal(message.Id(), edited.Id());
        Assert.Equal("better <b>words</b> 🦊", edited["body"].Str());
        Assert.Equal(message["sentAt"].Str(), edited["sentAt"].Str());
        Assert.NotNull(edited["editedAt"]);
        Assert.True(DateTime.Parse(edited["editedAt"].Str()).ToUniversalTime() >= DateTime.Parse(message["sentAt"].Str()).ToUniversalTime());
        Assert.False(edited["deleted"]!.GetValue<bool>());

        // A new data key sealed it; the old key is gone, so the old ciphertext can never be opened again.
        var newKey = await services.ScalarAsync($"SELECT HEX(SUBSTRING(body, 2, 16)) FROM messages WHERE id = {message.Id()}");
        Assert.NotEqual(oldKey, newKey);
        Assert.Equal("0", await services.ScalarAsync($"SELECT COUNT(*) FROM data_keys WHERE id = UNHEX('{oldKey}')"));
        Assert.Equal("1", await services.ScalarAsync($"SELECT COUNT(*) FROM data_keys WHERE id = UNHEX('{newKey}')"));
        Assert.Equal("0", await services.ScalarAsync("SELECT COUNT(*) FROM messages WHERE INSTR(body, 'better') > 0"));

        // Live on the other node, as JSON and as the browser's fragment (encoded, marked edited).
        var live = await stream.NextOfAsync("message.edited");
        Chat.SameJson(edited, JsonNode.Parse(live.Data), "the live message.edited");
        var fragment = (await html.NextOfAsync("message.edited")).Data;
        Assert.StartsWith($"<li id=\"m-{message.Id()}\"", fragment);
        Assert.Contains("better &lt;b&gt;words&lt;/b&gt;", fragment);
        Assert.DoesNotContain("<b>", fragment);
        Assert.Contains("class=\"edited\"", fragment);

        // History and the inbox show the edit, on both nodes; the message keeps its place.
        foreach (var node in new[] { node1, node2 })
        {
            var history = await node.HistoryAsync(bob, group.Id());
            Assert.Equal(new[] { message.Id(), later.Id() }, history.Select(m => m.Id()));
            Chat.SameJson(edited, history[0], "history after the edit");
        }
        var last = await node1.SendAsync(bob, group.Id(), "last");
        await node1.PatchAsync(Url(last.Id()), new { body = "last, edited" }, bob.Token, 200);
        var entry = (await node2.InboxEntryAsync(alice, group.Id()))!;
        Assert.Equal("last, edited", entry["lastMessage"]!["body"].Str());
        Assert.NotNull(entry["lastMessage"]!["editedAt"]);

        // Replayed after a reconnect, on either node.
        await using var replay = await SseClient.OpenAsync(node1, bob.Token, (long.Parse(live.Id!) - 1).ToString());
        var again = await replay.NextAsync();
        Assert.Equal(("message.edited", live.Id), (again!.Event, again.Id));
        Chat.SameJson(edited, JsonNode.Parse(again.Data), "the replayed message.edited");

        // A second edit replaces the key again.
        await node2.PatchAsync(Url(message.Id()), new { body = "third try" }, alice.Token, 200);
        Assert.Equal("0", await services.ScalarAsync($"SELECT COUNT(*) FROM data_keys WHERE id = UNHEX('{newKey}')"));
        Assert.Equal("third try", (await node1.HistoryAsync(bob, group.Id()))[0]["body"].Str());
    }

    [Fact]
    public async Task Only_the_sender_edits_members_who_cannot_see_it_get_404_and_bad_bodies_and_deleted_messages_get_400()
    {
        var app = await services.AppAsync();
        var alice = await app.MemberAsync("fa");
        var bob = await app.MemberAsync("fb");
        var carol = await app.MemberAsync("fc");
        var group = await app.GroupAsync(alice, "rules", bob);
        var message = await app.SendAsync(alice, group.Id(), "original");

        var forbidden = await (await app.PatchAsync(Url(message.Id()), new { body = "hijack" }, bob.Token, 403)).ProblemAsync(403);
        Assert.Equal("Not your message", forbidden["title"].Str());
        await (await app.PatchAsync(Url(message.Id()), new { body = "hijack" }, carol.Token, 404)).ProblemAsync(404);
        await (await app.PatchAsync(Url("abc"), new { body = "x" }, alice.Token, 404)).ProblemAsync(404);
        await (await app.PatchAsync(Url("99999999"), new { body = "x" }, alice.Token, 404)).ProblemAsync(404);
        await app.PatchAsync(Url(message.Id()), new { body = "x" }, null, 401);
        // A member added later cannot see (or edit) what was said before.
        await app.PostAsync($"/api/conversations/{Chat.Esc(group.Id())}/members", new { username = carol.Name }, alice.Token, 200);
        await (await app.PatchAsync(Url(message.Id()), new { body = "x" }, carol.Token, 404)).ProblemAsync(404);

        foreach (var body in new[] { """{"body":""}""", """{"body":null}""", """{}""", """{"body":42}""", """{"body":"\ud800"}""", """{"body":"a\u0000b"}""", """{"body":"\u001b[31m"}""", """{"body":"\u200b\u2060"}""",
            $$"""{"body":"{{new string('x', 4001)}}"}""", "{" })
        {
            var problem = await (await app.PatchRawAsync(Url(message.Id()), body, alice.Token, 400)).ProblemAsync(400);
            Api.AssertNoInternals(problem.ToJsonString());
        }
        await app.PatchRawAsync(Url(message.Id()), $$"""{"body":"{{new string('x', 4000)}}"}""", alice.Token, 200);

        await app.DeleteAsync(Url(message.Id()), alice.Token, 204);
        var deleted = await (await app.PatchAsync(Url(message.Id()), new { body = "undead" }, alice.Token, 400)).ProblemAsync(400);
        Assert.Equal("Message deleted", deleted["title"].Str());
        var tombstone = (await app.HistoryAsync(bob, group.Id())).Single(m => m.Id() == message.Id());
        Assert.Null(tombstone["body"]);
        Assert.Null(tombstone["editedAt"]);
    }
}
