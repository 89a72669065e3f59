using Ams.Tests.Support;

namespace Ams.Tests.Messaging;

/// <summary>A registered, logged-in user.</summary>
public sealed record Member(string Name, string Token, string DisplayName);

/// <summary>Short helpers for the messaging tests: users, conversations, messages, history.</summary>
public static class Chat
{
    public static async Task<Member> MemberAsync(this IAlbaHost app, string prefix = "m", string? displayName = null)
    {
        var name = Api.UniqueName(prefix);
        await app.RegisterAsync(name, displayName: displayName);
        return new Member(name, await app.LoginAsync(name), displayName ?? name);
    }

    public static async Task<Member[]> MembersAsync(this IAlbaHost app, int count, string prefix = "m")
    {
        var members = new Member[count];
        for (var i = 0; i < count; i++) members[i] = await app.MemberAsync(prefix);
        return members;
    }

    public static Task<IScenarioResult> PostAsync(this IAlbaHost app, string url, object body, string? token, int? status) =>
        app.Scenario(s =>
        {
            s.Post.Json(body).ToUrl(url);
            if (token is not null) s.WithBearerToken(token);
            if (status is { } expected) s.StatusCodeShouldBe(expected); else s.IgnoreStatusCode();
        });

    /// <summary>Posts <paramref name="json"/> exactly as written, as application/json.</summary>
    public static Task<IScenarioResult> PostRawAsync(this IAlbaHost app, string url, string json, string? token, int? status) =>
        app.Scenario(s =>
        {
            s.Post.Text(json).ToUrl(url);
            s.WithRequestHeader("Content-Type", "application/json");
            if (token is not null) s.WithBearerToken(token);
            if (status is { } expected) s.StatusCodeShouldBe(expected); else s.IgnoreStatusCode();
        });

    public static Task<IScenarioResult> GetAsync(this IAlbaHost app, string url, string? token, int? status) =>
        app.Scenario(s =>
        {
            s.Get.Url(url);
            if (token is not null) s.WithBearerToken(token);
            if (status is { } expected) s.StatusCodeShouldBe(expected); else s.IgnoreStatusCode();
        });

    public static Task<IScenarioResult> PatchAsync(this IAlbaHost app, string url, object body, string? token, int? status) =>
        app.Scenario(s =>
        {
            s.Patch.Json(body).ToUrl(url);
            if (token is not null) s.WithBearerToken(token);
            if (status is { } expected) s.StatusCodeShouldBe(expected); else s.IgnoreStatusCode();
        });

    /// <summary>PATCHes <paramref name="json"/> exactly as written, as application/json.</summary>
    public static Task<IScenarioResult> PatchRawAsync(this IAlbaHost app, string url, string json, string? token, int? status) =>
        app.Scenario(s =>
        {
            s.Patch.Text(json).ToUrl(url);
            s.WithRequestHeader("Content-Type", "application/json");
            if (token is not null) s.WithBearerToken(token);
            if (status is { } expected) s.StatusCodeShouldBe(expected); else s.IgnoreStatusCode();
        });

    public static Task<IScenarioResult> DeleteAsync(this IAlbaHost app, string url, string? token, int? status) =>
        app.Scenario(s =>
        {
            s.Delete.Url(url);
            if (token is not null) s.WithBearerToken(token);
            if (status is { } expected) s.StatusCodeShouldBe(expected); else s.IgnoreStatusCode();
        });

    /// <summary>The next event of <paramref name="kind"/> on the stream, skipping others; fails on a quiet stream.</summary>
    public static async Task<SseEvent> NextOfAsync(this SseClient stream, string kind)
    {
        for (var i = 0; i < 100; i++)
        {
            var next = await stream.NextAsync();
            Assert.True(next is not null, $"the stream ended before an event: {kind}");
            if (next!.Event == kind) return next;
        }
        throw new Xunit.Sdk.XunitException($"no event: {kind} in 100 events");
    }

    public static int Status(this IScenarioResult result) => result.Context.Response.StatusCode;

    public static string Str(this JsonNode? node) => node!.GetValue<string>();

    public static string Id(this JsonNode node) => node["id"].Str();

    public static string Esc(string value) => Uri.EscapeDataString(value);

    /// <summary>POST /api/conversations by <paramref name="caller"/> with the others as members.</summary>
    public static async Task<JsonObject> OpenAsync(this IAlbaHost app, Member caller, string? title, int status, params Member[] others)
    {
        object body = title is null
            ? new { members = others.Select(o => o.Name).ToArray() }
            : new { members = others.Select(o => o.Name).ToArray(), title };
        var result = await app.PostAsync("/api/conversations", body, caller.Token, status);
        return (await result.JsonAsync()).AsObject();
    }

    public static Task<JsonObject> GroupAsync(this IAlbaHost app, Member caller, string title, params Member[] others) =>
        app.OpenAsync(caller, title, 201, others);

    public static Task<JsonObject> DirectAsync(this IAlbaHost app, Member caller, Member other) =>
        app.OpenAsync(caller, null, 201, other);

    /// <summary>POST /api/messages; expects 201. A throttled send waits out Retry-After and tries again (this helper is not the throttle test).</summary>
    public static Task<JsonObject> SendAsync(this IAlbaHost app, Member sender, string conversationId, string body) =>
        SendBodyAsync(app, sender, new { conversationId, body });

    public static Task<JsonObject> SendToAsync(this IAlbaHost app, Member sender, Member to, string body) =>
        SendBodyAsync(app, sender, new { to = to.Name, body });

    static async Task<JsonObject> SendBodyAsync(IAlbaHost app, Member sender, object request)
    {
        for (var attempt = 0; ; attempt++)
        {
            var result = await app.PostAsync("/api/messages", request, sender.Token, null);
            if (result.Status() == 429 && attempt < 3
                && int.TryParse(result.Context.Response.Headers.RetryAfter.ToString(), out var seconds) && seconds <= 65)
            {
                await Task.Delay(TimeSpan.FromSeconds(seconds));
                continue;
            }
            var text = await result.ReadAsTextAsync();
            Assert.True(result.Status() == 201, $"POST /api/messages: expected 201, got {result.Status()}: {text}");
            return JsonNode.Parse(text)!.AsObject();
        }
    }

    public static async Task<JsonObject> ConversationAsync(this IAlbaHost app, Member caller, string id) =>
        (await (await app.GetAsync($"/api/conversations/{Esc(id)}", caller.Token, 200)).JsonAsync()).AsObject();

    public static async Task<JsonArray> InboxAsync(this IAlbaHost app, Member caller) =>
        (await (await app.GetAsync("/api/conversations", caller.Token, 200)).JsonAsync()).AsArray();

    /// <summary>The caller's inbox entry for one conversation, or null.</summary>
    public static async Task<JsonObject?> InboxEntryAsync(this IAlbaHost app, Member caller, string id) =>
        (await app.InboxAsync(caller)).FirstOrDefault(c => c!.Id() == id)?.AsObject();

    /// <summary>One page of history; <paramref name="query"/> without the leading '?'.</summary>
    public static async Task<JsonObject> PageAsync(this IAlbaHost app, Member caller, string id, string query = "") =>
        (await (await app.GetAsync($"/api/conversations/{Esc(id)}/messages{(query == "" ? "" : "?" + query)}", caller.Token, 200)).JsonAsync()).AsObject();

    /// <summary>The whole history visible to the caller, oldest first, following nextBefore.</summary>
    public static async Task<List<JsonObject>> HistoryAsync(this IAlbaHost app, Member caller, string id)
    {
        var pages = new List<List<JsonObject>>();
        string? before = null;
        for (var i = 0; i < 100; i++)
        {
            var page = await app.PageAsync(caller, id, before is null ? "limit=100" : $"limit=100&before={Esc(before)}");
            pages.Add(page["messages"]!.AsArray().Select(m => m!.AsObject()).ToList());
            before = page["nextBefore"]?.GetValue<string>();
            if (before is null) break;
        }
        pages.Reverse();
        return pages.SelectMany(p => p).ToList();
    }

    public static int Unread(this JsonNode conversation) => conversation["unread"]!.GetValue<int>();

    public static string[] MemberNames(this JsonNode conversation) =>
        conversation["members"]!.AsArray().Select(m => m!["username"].Str()).Order(StringComparer.Ordinal).ToArray();

    public static string[] Names(params Member[] members) => members.Select(m => m.Name).Order(StringComparer.Ordinal).ToArray();

    public static string[] Bodies(IEnumerable<JsonNode> messages) => messages.Select(m => m["body"].Str()).ToArray();

    /// <summary>Deep JSON equality with both sides in the failure message.</summary>
    public static void SameJson(JsonNode? expected, JsonNode? actual, string what)
    {
        Assert.True(JsonNode.DeepEquals(expected, actual),
            $"{what}: expected {expected?.ToJsonString() ?? "null"}, got {actual?.ToJsonString() ?? "null"}");
    }

    /// <summary>A problem body without the per-request parts, for "these two look alike" comparisons.</summary>
    public static JsonObject WithoutRequestParts(JsonObject problem)
    {
        var copy = problem.DeepClone().AsObject();
        copy.Remove("traceId");
        copy.Remove("instance");
        return copy;
    }
}
