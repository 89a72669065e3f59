using System.Net;
using System.Text.Json;

namespace Ams.Tests.Support;

/// <summary>Short helpers for the calls almost every test makes.</summary>
public static class Api
{
    public const string Password = "correct horse battery staple";

    public static string UniqueName(string prefix = "u") => $"{prefix}{Guid.NewGuid():N}"[..20];

    public static async Task<JsonNode> RegisterAsync(this IAlbaHost host, string username, string password = Password, string? displayName = null)
    {
        var result = await host.Scenario(s =>
        {
            s.Post.Json(new { username, password, displayName }).ToUrl("/api/register");
            s.StatusCodeShouldBe(201);
        });
        return JsonNode.Parse(await result.ReadAsTextAsync())!;
    }

    public static async Task<string> LoginAsync(this IAlbaHost host, string username, string password = Password, string ip = "192.0.2.1")
    {
        var result = await host.Scenario(s =>
        {
            s.Post.Json(new { username, password }).ToUrl("/api/login");
            s.From(ip);
            s.StatusCodeShouldBe(200);
        });
        return JsonNode.Parse(await result.ReadAsTextAsync())!["token"]!.GetValue<string>();
    }

    /// <summary>A new user with two-factor authentication on: their session token (from before it was on), TOTP secret and recovery codes.</summary>
    public static async Task<(string Name, string Token, byte[] Secret, List<string> RecoveryCodes)> TwoFactorUserAsync(this IAlbaHost host, string prefix)
    {
        var name = UniqueName(prefix);
        await host.RegisterAsync(name);
        var token = await host.LoginAsync(name);
        var setup = JsonNode.Parse(await (await host.Scenario(s => { s.Post.Json(new { password = Password }).ToUrl("/api/2fa/setup"); s.WithBearerToken(token); })).ReadAsTextAsync())!;
        var secret = OtpNet.Base32Encoding.ToBytes(setup["secret"]!.GetValue<string>());
        var enabled = JsonNode.Parse(await (await host.Scenario(s =>
        {
            s.Post.Json(new { code = new OtpNet.Totp(secret).ComputeTotp() }).ToUrl("/api/2fa/enable");
            s.WithBearerToken(token);
        })).ReadAsTextAsync())!;
        return (name, token, secret, enabled["recoveryCodes"]!.AsArray().Select(c => c!.GetValue<string>()).ToList());
    }

    public static async Task<string> NewUserTokenAsync(this IAlbaHost host, string prefix = "u")
    {
        var name = UniqueName(prefix);
        await host.RegisterAsync(name);
        return await host.LoginAsync(name);
    }

    /// <summary>TestServer has no peer address; set one so per-address throttling has a bucket.</summary>
    public static void From(this Scenario s, string ip) =>
        s.ConfigureHttpContext(c => c.Connection.RemoteIpAddress = IPAddress.Parse(ip));

    public static async Task<JsonNode> JsonAsync(this IScenarioResult result) => JsonNode.Parse(await result.ReadAsTextAsync())!;

    /// <summary>Asserts an RFC 9457 body and returns it.</summary>
    public static async Task<JsonObject> ProblemAsync(this IScenarioResult result, int status)
    {
        Assert.Equal(status, result.Context.Response.StatusCode);
        Assert.StartsWith("application/problem+json", result.Context.Response.ContentType);
        var text = await result.ReadAsTextAsync();
        var body = JsonNode.Parse(text)!.AsObject();
        Assert.Equal(status, body["status"]!.GetValue<int>());
        Assert.False(string.IsNullOrWhiteSpace(body["title"]?.GetValue<string>()));
        // The documented schema requires a type; without one a client reads about:blank, whose title is the status phrase.
        Assert.StartsWith("https://", body["type"]?.GetValue<string>() ?? "(no type)");
        // api.md: the section of RFC 9110 for the status (RFC 6585's for 429), whichever writer answered.
        if (Ams.Infrastructure.ProblemJsonWriter.Defaults.TryGetValue(status, out var documented))
            Assert.Equal(documented.Type, body["type"]!.GetValue<string>());
        AssertNoInternals(text);
        return body;
    }

    public static string[] ErrorNames(JsonObject problem) =>
        problem["errors"]!.AsArray().Select(e => e!["name"]!.GetValue<string>()).ToArray();

    public static void AssertNoInternals(string body)
    {
        foreach (var leak in new[] { "Exception", " at Ams.", "StackExchange", "MySqlConnector", "SELECT ", "INSERT ", "   at " })
            Assert.DoesNotContain(leak, body);
    }

    public static JsonSerializerOptions Web { get; } = new(JsonSerializerDefaults.Web);
}
