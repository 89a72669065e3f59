using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using Ams.Testing;

namespace Ams.Smoke;

static class SmokeUsers
{
    public const string Password = "correct horse battery staple";

    /// <summary>A newly registered user and a client that sends their bearer token.</summary>
    public static Task<(string Name, HttpClient Client)> UserAsync(this AppProcess app, string prefix) => UserAsync(app.Client(), prefix);

    /// <summary>Registers and signs in through <paramref name="client"/> (a node's or a proxy's), which then carries the token.</summary>
    public static async Task<(string Name, HttpClient Client)> UserAsync(HttpClient client, string prefix)
    {
        var name = $"{prefix}{Guid.NewGuid():N}"[..20];
        Assert.Equal(HttpStatusCode.Created, (await client.PostAsJsonAsync("/api/register", new { username = name, password = Password })).StatusCode);
        // The status and body in the failure message: a sign-in refused on a cluster says why.
        var login = await JsonAsync(await client.PostAsJsonAsync("/api/login", new { username = name, password = Password }), HttpStatusCode.OK);
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", login["token"]!.GetValue<string>());
        return (name, client);
    }

    /// <summary>The response's JSON, after checking its status (the body is in the failure message).</summary>
    public static async Task<JsonNode> JsonAsync(HttpResponseMessage response, HttpStatusCode status)
    {
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(status == response.StatusCode, $"expected {status}, got {response.StatusCode}: {text}");
        return JsonNode.Parse(text)!;
    }
}
