using Ams.Tests.Support;

namespace Ams.Tests.Messaging;

/// <summary>POST /api/conversations/{id}/typing: ephemeral, to the other members connected now, on any node; throttled.</summary>
public sealed class TypingTests(Services services) : IClassFixture<Services>
{
    static string Url(JsonNode conversation) => $"/api/conversations/{Chat.Esc(conversation.Id())}/typing";

    static Task<IScenarioResult> TypingAsync(IAlbaHost app, string url, string? token, int status) =>
        app.Scenario(s =>
        {
            s.Post.Url(url);
            if (token is not null) s.WithBearerToken(token);
            s.StatusCodeShouldBe(status);
        });

    [Fact]
    public async Task Typing_reaches_the_other_members_on_another_node_without_an_id_and_is_never_stored_or_replayed()
    {
        var node1 = await services.AppAsync();
        await using var node2 = await services.StartAppAsync();
        var alice = await node1.MemberAsync("ta");
        var bob = await node1.MemberAsync("tb");
        var carol = await node1.MemberAsync("tc");
        var group = await node1.GroupAsync(alice, "typing", bob);
        var first = await node1.SendAsync(bob, group.Id(), "before");
        var eventsBefore = await services.SqlAsync("SELECT COUNT(*) FROM events");
        await using var bobs = await SseClient.OpenAsync(node2, bob.Token);
        await using var html = await SseClient.OpenAsync(node2, bob.Token, path: "/events");
        await using var alices = await SseClient.OpenAsync(node1, alice.Token);
        await using var carols = await SseClient.OpenAsync(node2, carol.Token);

        await TypingAsync(node1, Url(group), alice.Token, 204);
        var typing = await bobs.NextAsync();
        Assert.Equal(("typing", null), (typing!.Event, typing.Id));
        Chat.SameJson(new JsonObject { ["conversationId"] = group.Id(), ["username"] = alice.Name }, JsonNode.Parse(typing.Data), "the typing payload");
        var fragment = (await html.NextAsync())!;
        Assert.Equal(("typing", null), (fragment.Event, fragment.Id));
        Assert.Contains($"data-username=\"{alice.Name}\"", fragment.Data);
        Assert.Equal(eventsBefore, await services.SqlAsync("SELECT COUNT(*) FROM events"));

        // The stream's resume point did not move: the next stored event follows the last one before it.
        var reply = await node2.SendAsync(bob, group.Id(), "after");
        var message = await bobs.NextOfAsync("message");
        Assert.Equal(reply.Id(), JsonNode.Parse(message.Data)!.Id());
        await using var replay = await SseClient.OpenAsync(node1, bob.Token, "0");
        var replayed = new List<SseEvent>();
        for (var i = 0; i < 3; i++) replayed.Add((await replay.NextAsync())!);
        // The group's creation, then the two messages: no typing between them.
        Assert.Equal(new[] { "conversation", "message", "message" }, replayed.Select(e => e.Event));
        Assert.Equal(new[] { group.Id(), first.Id(), reply.Id() }, replayed.Select(e => JsonNode.Parse(e.Data)!.Id()));
        Assert.Equal(message.Id, replayed[2].Id);

        // Neither the typist nor a non-member hears it; the typist's own stream gets only the reply.
        Assert.Equal("message", (await alices.NextAsync())!.Event);
        Assert.True(await alices.QuietForAsync(TimeSpan.FromMilliseconds(500)));
        Assert.True(await carols.QuietForAsync(TimeSpan.FromMilliseconds(300)));
    }

    [Fact]
    public async Task Non_members_get_404_and_a_typist_past_the_budget_gets_429_with_retry_after()
    {
        await using var app = await services.StartAppAsync(settings: [new("Conversations:MaxTyping", "3"), new("Conversations:TypingWindow", "00:00:30")]);
        var alice = await app.MemberAsync("ua");
        var bob = await app.MemberAsync("ub");
        var carol = await app.MemberAsync("uc");
        var group = await app.GroupAsync(alice, "throttled typing", bob);

        await (await TypingAsync(app, Url(group), carol.Token, 404)).ProblemAsync(404);
        await (await TypingAsync(app, "/api/conversations/abc/typing", carol.Token, 404)).ProblemAsync(404);
        await TypingAsync(app, Url(group), null, 401);
        for (var i = 0; i < 3; i++) await TypingAsync(app, Url(group), alice.Token, 204);
        var throttled = await TypingAsync(app, Url(group), alice.Token, 429);
        await throttled.ProblemAsync(429);
        Assert.InRange(int.Parse(throttled.Context.Response.Headers.RetryAfter.ToString()), 1, 30);
        await TypingAsync(app, Url(group), bob.Token, 204);   // per user
    }
}
