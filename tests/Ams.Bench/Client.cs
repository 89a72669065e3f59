using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json.Nodes;

namespace Ams.Bench;

/// <summary>What the load needs from the API: users, tokens, conversations, sends.</summary>
static class Client
{
    public const string Password = "correct horse battery staple";

    public static HttpClient For(Uri node, string? token = null)
    {
        var client = new HttpClient(new SocketsHttpHandler
        {
            MaxConnectionsPerServer = 1024,
            PooledConnectionLifetime = TimeSpan.FromMinutes(10),
            // The loopback cluster's HAProxy has a self-signed certificate (`just bench --cluster`).
            SslOptions = { RemoteCertificateValidationCallback = (_, _, _, _) => node.IsLoopback },
        })
        {
            BaseAddress = node,
            Timeout = TimeSpan.FromSeconds(30),
        };
        if (token is not null) client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return client;
    }

    public static async Task<(string Name, string Token)> UserAsync(Uri node, string prefix)
    {
        using var client = For(node);
        var name = $"{prefix}{Guid.NewGuid():N}"[..20];
        (await client.PostAsJsonAsync("/api/register", new { username = name, password = Password })).EnsureSuccessStatusCode();
        var login = await (await client.PostAsJsonAsync("/api/login", new { username = name, password = Password })).Content.ReadFromJsonAsync<JsonObject>();
        return (name, login!["token"]!.GetValue<string>());
    }

    public static async Task<string> DirectAsync(Uri node, string token, string other)
    {
        using var client = For(node, token);
        var response = await client.PostAsJsonAsync("/api/conversations", new { members = new[] { other } });
        response.EnsureSuccessStatusCode();
        return (await response.Content.ReadFromJsonAsync<JsonObject>())!["id"]!.GetValue<string>();
    }
}
