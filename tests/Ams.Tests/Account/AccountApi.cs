using Ams.Tests.Messaging;
using Ams.Tests.Support;

namespace Ams.Tests.Account;

/// <summary>Short helpers for the account-security calls.</summary>
static class AccountApi
{
    public static Task<IScenarioResult> CallAsync(this IAlbaHost app, string method, string url, object? body, string? token, int? status,
        string? userAgent = null, string ip = "192.0.2.91") =>
        app.Scenario(s =>
        {
            switch (method)
            {
                case "GET": s.Get.Url(url); break;
                case "DELETE": s.Delete.Url(url); break;
                default: if (body is null) s.Post.Url(url); else s.Post.Json(body).ToUrl(url); break;
            }
            if (token is not null) s.WithBearerToken(token);
            if (userAgent is not null) s.WithRequestHeader("User-Agent", userAgent);
            s.From(ip);
            if (status is { } expected) s.StatusCodeShouldBe(expected); else s.IgnoreStatusCode();
        });

    public static async Task<string> LoginAsAsync(this IAlbaHost app, string username, string userAgent, string password = Api.Password, string ip = "192.0.2.91")
    {
        var result = await app.CallAsync("POST", "/api/login", new { username, password }, null, 200, userAgent, ip);
        return (await result.JsonAsync())["token"].Str();
    }

    public static async Task<JsonArray> SessionsAsync(this IAlbaHost app, string token) =>
        (await (await app.CallAsync("GET", "/api/sessions", null, token, 200)).JsonAsync()).AsArray();

    public static async Task<JsonArray> SecurityEventsAsync(this IAlbaHost app, string token, string query = "") =>
        (await (await app.CallAsync("GET", "/api/account/security-events" + query, null, token, 200)).JsonAsync()).AsArray();

    public static async Task<JsonObject> CreateTokenAsync(this IAlbaHost app, string token, string name = "bot", int? expiresInDays = null, string password = Api.Password) =>
        (await (await app.CallAsync("POST", "/api/tokens", new { name, expiresInDays, password }, token, 201)).JsonAsync()).AsObject();

    /// <summary>Polls until the call answers <paramref name="status"/> (a revocation that has to cross nodes or an outage).</summary>
    public static async Task EventuallyAsync(this IAlbaHost app, string url, string token, int status, TimeSpan? within = null)
    {
        var deadline = DateTime.UtcNow + (within ?? TimeSpan.FromSeconds(10));
        while (true)
        {
            var result = await app.CallAsync("GET", url, null, token, null);
            if (result.Status() == status) return;
            if (DateTime.UtcNow > deadline) Assert.Fail($"{url} answered {result.Status()}, not {status}");
            await Task.Delay(100);
        }
    }
}
