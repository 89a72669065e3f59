using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using Ams.Testing;

namespace Ams.Smoke;

/// <summary>The messaging endpoints and the event streams, through HTTP, on the AOT binary.</summary>
public sealed class MessagingSmokeTests(AppProcess app) : IClassFixture<AppProcess>
{
    [Fact]
    public async Task Conversations_messages_history_reads_and_live_events()
    {
        var (alice, a) = await app.UserAsync("sa");
        var (bob, b) = await app.UserAsync("sb");
        var (carol, c) = await app.UserAsync("sc");

        // Bob listens before anything happens.
        using var request = new HttpRequestMessage(HttpMethod.Get, "/api/events");
        request.Headers.Accept.ParseAdd("text/event-stream");
        using var events = await b.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal("text/event-stream", events.Content.Headers.ContentType?.MediaType);
        using var reader = new StreamReader(await events.Content.ReadAsStreamAsync());

        var direct = await SmokeUsers.JsonAsync(await a.PostAsJsonAsync("/api/conversations", new { members = new[] { bob } }), HttpStatusCode.Created);
        Assert.Equal("direct", direct["kind"]!.GetValue<string>());
        var again = await SmokeUsers.JsonAsync(await b.PostAsJsonAsync("/api/conversations", new { members = new[] { alice } }), HttpStatusCode.OK);
        Assert.Equal(direct["id"]!.GetValue<string>(), again["id"]!.GetValue<string>());
        var id = direct["id"]!.GetValue<string>();

        var ids = new List<string>();
        for (var i = 0; i < 7; i++)
        {
            var sent = await SmokeUsers.JsonAsync(await a.PostAsJsonAsync("/api/messages", new { conversationId = id, body = $"<b>{i}</b>" }), HttpStatusCode.Created);
            Assert.Equal("os", sent["entropy"]!.GetValue<string>());
            ids.Add(sent["id"]!.GetValue<string>());
        }
        var viaTo = await SmokeUsers.JsonAsync(await b.PostAsJsonAsync("/api/messages", new { to = alice, body = "reply" }), HttpStatusCode.Created);
        Assert.Equal(id, viaTo["conversationId"]!.GetValue<string>());

        // The live stream got Alice's first message.
        string? line;
        while ((line = await reader.ReadLineAsync()) is not null && !line.StartsWith("data: {")) { }
        Assert.Contains("\"body\":\"\\u003Cb\\u003E0\\u003C/b\\u003E\"", line!.Replace("<b>", "\\u003Cb\\u003E").Replace("</b>", "\\u003C/b\\u003E"));

        var page = await SmokeUsers.JsonAsync(await b.GetAsync($"/api/conversations/{id}/messages?limit=3"), HttpStatusCode.OK);
        Assert.Equal(3, page["messages"]!.AsArray().Count);
        var older = await SmokeUsers.JsonAsync(await b.GetAsync($"/api/conversations/{id}/messages?limit=3&before={page["nextBefore"]!.GetValue<string>()}"), HttpStatusCode.OK);
        Assert.Equal(ids[4], older["messages"]![2]!["id"]!.GetValue<string>());   // the first page was 5, 6 and the reply
        await SmokeUsers.JsonAsync(await b.GetAsync($"/api/conversations/{id}/messages?limit=0"), HttpStatusCode.BadRequest);

        Assert.Equal(HttpStatusCode.NoContent, (await b.PostAsJsonAsync($"/api/conversations/{id}/read", new { upTo = ids[6] })).StatusCode);
        var inbox = await SmokeUsers.JsonAsync(await b.GetAsync("/api/conversations"), HttpStatusCode.OK);
        Assert.Equal(0, inbox[0]!["unread"]!.GetValue<long>());
        Assert.Equal("reply", inbox[0]!["lastMessage"]!["body"]!.GetValue<string>());

        await SmokeUsers.JsonAsync(await c.GetAsync($"/api/conversations/{id}"), HttpStatusCode.NotFound);
        await SmokeUsers.JsonAsync(await c.GetAsync($"/api/conversations/{id}/messages"), HttpStatusCode.NotFound);
        await SmokeUsers.JsonAsync(await c.PostAsJsonAsync("/api/messages", new { conversationId = id, body = "intruder" }), HttpStatusCode.NotFound);
        await SmokeUsers.JsonAsync(await a.PostAsJsonAsync("/api/messages", new { conversationId = id, body = "" }), HttpStatusCode.BadRequest);
        await SmokeUsers.JsonAsync(await a.PostAsJsonAsync("/api/messages", new { conversationId = id, body = new string('x', 4001) }), HttpStatusCode.BadRequest);

        var group = await SmokeUsers.JsonAsync(await a.PostAsJsonAsync("/api/conversations", new { members = new[] { bob }, title = "smoke group" }), HttpStatusCode.Created);
        var groupId = group["id"]!.GetValue<string>();
        await SmokeUsers.JsonAsync(await a.PostAsJsonAsync("/api/messages", new { conversationId = groupId, body = "before carol" }), HttpStatusCode.Created);
        var added = await SmokeUsers.JsonAsync(await a.PostAsJsonAsync($"/api/conversations/{groupId}/members", new { username = carol }), HttpStatusCode.OK);
        Assert.Equal(3, added["members"]!.AsArray().Count);
        var carolView = await SmokeUsers.JsonAsync(await c.GetAsync($"/api/conversations/{groupId}"), HttpStatusCode.OK);
        Assert.Null(carolView["lastMessage"]);
        Assert.Empty((await SmokeUsers.JsonAsync(await c.GetAsync($"/api/conversations/{groupId}/messages"), HttpStatusCode.OK))["messages"]!.AsArray());
        await SmokeUsers.JsonAsync(await a.PostAsJsonAsync($"/api/conversations/{id}/members", new { username = carol }), HttpStatusCode.BadRequest);
        await SmokeUsers.JsonAsync(await a.PostAsJsonAsync("/api/conversations", new { members = new[] { "nobody-at-all" } }), HttpStatusCode.NotFound);

        // The browser's fragment stream answers too.
        using var html = new HttpRequestMessage(HttpMethod.Get, "/events");
        using var fragments = await c.SendAsync(html, HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, fragments.StatusCode);
        Assert.Equal("text/event-stream", fragments.Content.Headers.ContentType?.MediaType);
    }
}
