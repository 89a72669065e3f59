using System.Net;
using System.Net.Http.Json;
using Ams.Testing;

namespace Ams.Smoke;

/// <summary>Issue 14's calls on the AOT binary: edit, group management, reactions, typing, presence, user lookup.</summary>
public sealed class ChatSmokeTests(AppProcess app) : IClassFixture<AppProcess>
{
    [Fact]
    public async Task Edit_rename_react_type_presence_lookup_and_remove()
    {
        var (alice, a) = await app.UserAsync("ca");
        var (bob, b) = await app.UserAsync("cb");
        var (carol, c) = await app.UserAsync("cc");

        using var request = new HttpRequestMessage(HttpMethod.Get, "/api/events");
        request.Headers.Accept.ParseAdd("text/event-stream");
        using var events = await b.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        using var reader = new StreamReader(await events.Content.ReadAsStreamAsync());

        var group = await SmokeUsers.JsonAsync(await a.PostAsJsonAsync("/api/conversations", new { members = new[] { bob, carol }, title = "smoke chat" }), HttpStatusCode.Created);
        var id = group["id"]!.GetValue<string>();
        Assert.Equal(alice, group["owner"]!.GetValue<string>());
        using var sending = await a.PostAsJsonAsync("/api/messages", new { conversationId = id, body = "first" });
        var sent = await SmokeUsers.JsonAsync(sending, HttpStatusCode.Created);
        var messageId = sent["id"]!.GetValue<string>();
        Assert.Equal($"/api/messages/{messageId}", sending.Headers.Location?.OriginalString);

        var edited = await SmokeUsers.JsonAsync(await a.PatchAsJsonAsync($"/api/messages/{messageId}", new { body = "second" }), HttpStatusCode.OK);
        Assert.Equal("second", edited["body"]!.GetValue<string>());
        Assert.NotNull(edited["editedAt"]);
        await SmokeUsers.JsonAsync(await b.PatchAsJsonAsync($"/api/messages/{messageId}", new { body = "x" }), HttpStatusCode.Forbidden);
        await SmokeUsers.JsonAsync(await a.PatchAsJsonAsync($"/api/messages/{messageId}", new { body = "" }), HttpStatusCode.BadRequest);

        Assert.Equal(HttpStatusCode.NoContent, (await b.PutAsync($"/api/messages/{messageId}/reactions/%F0%9F%91%8D", null)).StatusCode);
        await SmokeUsers.JsonAsync(await b.PutAsync($"/api/messages/{messageId}/reactions/ab", null), HttpStatusCode.BadRequest);
        var history = await SmokeUsers.JsonAsync(await b.GetAsync($"/api/conversations/{id}/messages"), HttpStatusCode.OK);
        var reaction = history["messages"]![0]!["reactions"]![0]!;
        Assert.Equal(("👍", 1, true), (reaction["emoji"]!.GetValue<string>(), reaction["count"]!.GetValue<int>(), reaction["me"]!.GetValue<bool>()));
        // The message at its own address, as the history shows it (the AOT binary's query for one message).
        var one = await SmokeUsers.JsonAsync(await b.GetAsync($"/api/messages/{messageId}"), HttpStatusCode.OK);
        Assert.Equal(history["messages"]![0]!.ToJsonString(), one.ToJsonString());
        await SmokeUsers.JsonAsync(await b.GetAsync("/api/messages/1x"), HttpStatusCode.NotFound);

        var renamed = await SmokeUsers.JsonAsync(await a.PatchAsJsonAsync($"/api/conversations/{id}", new { title = "renamed" }), HttpStatusCode.OK);
        Assert.Equal("renamed", renamed["title"]!.GetValue<string>());
        await SmokeUsers.JsonAsync(await b.PatchAsJsonAsync($"/api/conversations/{id}", new { title = "mine" }), HttpStatusCode.Forbidden);

        Assert.Equal(HttpStatusCode.NoContent, (await a.PostAsync($"/api/conversations/{id}/typing", null)).StatusCode);
        var view = await SmokeUsers.JsonAsync(await a.GetAsync($"/api/conversations/{id}"), HttpStatusCode.OK);
        var bobEntry = view["members"]!.AsArray().Single(m => m!["username"]!.GetValue<string>() == bob)!;
        Assert.True(bobEntry["online"]!.GetValue<bool>());
        Assert.Null(bobEntry["readUpTo"]);

        var users = await SmokeUsers.JsonAsync(await a.GetAsync($"/api/users?prefix={bob}"), HttpStatusCode.OK);
        Assert.Equal(bob, users[0]!["username"]!.GetValue<string>());
        await SmokeUsers.JsonAsync(await a.GetAsync("/api/users?prefix=a"), HttpStatusCode.BadRequest);

        Assert.Equal(HttpStatusCode.NoContent, (await a.DeleteAsync($"/api/conversations/{id}/members/{carol}")).StatusCode);
        await SmokeUsers.JsonAsync(await c.GetAsync($"/api/conversations/{id}"), HttpStatusCode.NotFound);

        // Bob's stream saw the new group, the message, the edit, the reaction, the rename, the typing
        // notice (no id) and the removal.
        var seen = new List<string>();
        string? line;
        while (seen.Count < 7 && (line = await reader.ReadLineAsync()) is not null)
            if (line.StartsWith("event: ")) seen.Add(line["event: ".Length..]);
        Assert.Equal(new[] { "conversation", "message", "message.edited", "reaction", "conversation", "typing", "conversation" }, seen);
    }
}
