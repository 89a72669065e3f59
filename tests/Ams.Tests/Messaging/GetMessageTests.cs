using Ams.Tests.Attachments;
using Ams.Tests.Support;

namespace Ams.Tests.Messaging;

/// <summary>GET /api/messages/{id}, and the Location each 201 names (a message, a conversation, an upload).</summary>
public sealed class GetMessageTests(Services services) : IClassFixture<Services>
{
    static async Task<(JsonObject Message, string Location)> SendAsync(IAlbaHost app, Member sender, string conversationId, string body)
    {
        var result = await app.PostAsync("/api/messages", new { conversationId, body }, sender.Token, 201);
        return ((await result.JsonAsync()).AsObject(), result.Context.Response.Headers.Location.ToString());
    }

    [Fact]
    public async Task A_sent_message_is_at_its_Location_for_every_member_as_their_history_shows_it()
    {
        var app = await services.AppAsync();
        var alice = await app.MemberAsync("ga");
        var bob = await app.MemberAsync("gb");
        var group = await app.GroupAsync(alice, "one at a time", bob);
        var (sent, location) = await SendAsync(app, alice, group.Id(), "find me <b>&</b>");
        Assert.Equal($"/api/messages/{sent.Id()}", location);
        await app.Scenario(s =>
        {
            s.Put.Url($"/api/messages/{Chat.Esc(sent.Id())}/reactions/{Chat.Esc("👍")}");
            s.WithBearerToken(bob.Token);
            s.StatusCodeShouldBe(204);
        });

        foreach (var reader in new[] { alice, bob })
        {
            var one = (await (await app.GetAsync(location, reader.Token, 200)).JsonAsync()).AsObject();
            Chat.SameJson(Assert.Single(await app.HistoryAsync(reader, group.Id())), one, $"{reader.Name}'s message");
            Assert.Equal("find me <b>&</b>", one["body"].Str());
        }
        var edited = (await (await app.PatchAsync(location, new { body = "found" }, alice.Token, 200)).JsonAsync()).AsObject();
        Chat.SameJson(edited, (await (await app.GetAsync(location, alice.Token, 200)).JsonAsync()).AsObject(), "the edited message");

        await app.DeleteAsync(location, alice.Token, 204);
        var tombstone = (await (await app.GetAsync(location, bob.Token, 200)).JsonAsync()).AsObject();
        Assert.True(tombstone["deleted"]!.GetValue<bool>());
        Assert.Null(tombstone["body"]);
        Chat.SameJson(Assert.Single(await app.HistoryAsync(bob, group.Id())), tombstone, "the tombstone");
    }

    [Fact]
    public async Task A_message_is_404_alike_to_strangers_later_members_the_removed_and_for_ids_that_name_none()
    {
        var app = await services.AppAsync();
        var alice = await app.MemberAsync("gc");
        var bob = await app.MemberAsync("gd");
        var carol = await app.MemberAsync("ge");
        var dave = await app.MemberAsync("gf");
        var group = await app.GroupAsync(alice, "members only", bob, carol);
        var (sent, location) = await SendAsync(app, alice, group.Id(), "before dave");
        await app.PostAsync($"/api/conversations/{Chat.Esc(group.Id())}/members", new { username = dave.Name }, alice.Token, 200);
        await app.DeleteAsync($"/api/conversations/{Chat.Esc(group.Id())}/members/{carol.Name}", alice.Token, 204);
        var stranger = await app.MemberAsync("gg");

        var missing = await (await app.GetAsync("/api/messages/999999999999", alice.Token, 404)).ProblemAsync(404);
        foreach (var (who, url) in new[] { (stranger, location), (dave, location), (carol, location), (alice, "/api/messages/x1"), (alice, "/api/messages/-1") })
        {
            var problem = await (await app.GetAsync(url, who.Token, 404)).ProblemAsync(404);
            Assert.Equal(missing["title"].Str(), problem["title"].Str());
            Assert.DoesNotContain("before dave", problem.ToJsonString());
        }
        // The one a later member can see.
        var (after, afterLocation) = await SendAsync(app, bob, group.Id(), "after dave");
        Assert.Equal(after.Id(), (await (await app.GetAsync(afterLocation, dave.Token, 200)).JsonAsync())["id"].Str());
        await app.GetAsync(location, null, 401);
        Assert.NotEqual(sent.Id(), after.Id());
    }

    [Fact]
    public async Task A_new_group_and_an_upload_name_their_Location_and_a_direct_conversation_found_again_names_none()
    {
        var app = await services.AppAsync();
        var alice = await app.MemberAsync("gh");
        var bob = await app.MemberAsync("gi");
        var carol = await app.MemberAsync("gj");

        var created = await app.PostAsync("/api/conversations", new { members = new[] { bob.Name, carol.Name }, title = "placed" }, alice.Token, 201);
        var group = (await created.JsonAsync()).AsObject();
        Assert.Equal($"/api/conversations/{group.Id()}", created.Context.Response.Headers.Location.ToString());
        Chat.SameJson(await app.ConversationAsync(alice, group.Id()),
            (await (await app.GetAsync(created.Context.Response.Headers.Location.ToString(), alice.Token, 200)).JsonAsync()).AsObject(), "the group");

        var direct = await app.PostAsync("/api/conversations", new { members = new[] { bob.Name } }, alice.Token, 201);
        Assert.Equal($"/api/conversations/{(await direct.JsonAsync())["id"].Str()}", direct.Context.Response.Headers.Location.ToString());
        var again = await app.PostAsync("/api/conversations", new { members = new[] { bob.Name } }, alice.Token, 200);
        Assert.False(again.Context.Response.Headers.ContainsKey("Location"));

        var bytes = Files.Random(1000, seed: 7);
        using var uploaded = await app.UploadRawAsync(alice.Token, Files.Multipart(bytes, "placed.bin"));
        Assert.Equal(201, (int)uploaded.StatusCode);
        var upload = JsonNode.Parse(await uploaded.Content.ReadAsStringAsync())!;
        Assert.Equal($"/api/attachments/{upload.Id()}", uploaded.Headers.Location?.OriginalString);
        var download = await app.DownloadAsync(alice.Token, upload.Id());
        Assert.Equal(200, download.Status);
        Assert.Equal(bytes, download.Bytes);
    }
}
