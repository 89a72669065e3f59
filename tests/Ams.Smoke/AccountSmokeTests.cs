using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using Ams.Testing;

namespace Ams.Smoke;

/// <summary>Password change, sessions, security history, personal access tokens and the settings page on the AOT binary.</summary>
public sealed class AccountSmokeTests(AppProcess app) : IClassFixture<AppProcess>
{
    const string Password = "correct horse battery staple";
    const string NewPassword = "a brand new passphrase 42";

    static HttpClient Bearer(HttpClient client, string token)
    {
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return client;
    }

    async Task<string> LoginAsync(string name, string agent, string password = Password)
    {
        using var client = app.Client();
        client.DefaultRequestHeaders.UserAgent.ParseAdd(agent);
        var login = await client.PostAsJsonAsync("/api/login", new { username = name, password });
        Assert.Equal(HttpStatusCode.OK, login.StatusCode);
        return (await login.Content.ReadFromJsonAsync<JsonObject>())!["token"]!.GetValue<string>();
    }

    [Fact]
    public async Task Sessions_password_history_and_tokens()
    {
        var name = $"ac{Guid.NewGuid():N}"[..20];
        using (var anonymous = app.Client())
            Assert.Equal(HttpStatusCode.Created, (await anonymous.PostAsJsonAsync("/api/register", new { username = name, password = Password })).StatusCode);
        using var client = Bearer(app.Client(), await LoginAsync(name, "smoke/1"));
        var other = await LoginAsync(name, "smoke/2");

        var sessions = (await client.GetFromJsonAsync<JsonArray>("/api/sessions"))!;
        Assert.Equal(2, sessions.Count);
        Assert.Equal("smoke/2", sessions[0]!["userAgent"]!.GetValue<string>());
        Assert.True(sessions[1]!["current"]!.GetValue<bool>());
        Assert.Equal(HttpStatusCode.NotFound, (await client.DeleteAsync($"/api/sessions/{new string('0', 64)}")).StatusCode);
        Assert.Equal(HttpStatusCode.NoContent, (await client.DeleteAsync($"/api/sessions/{sessions[0]!["id"]!.GetValue<string>()}")).StatusCode);
        using (var gone = Bearer(app.Client(), other))
            Assert.Equal(HttpStatusCode.Unauthorized, (await gone.GetAsync("/api/me")).StatusCode);
        await LoginAsync(name, "smoke/3");
        Assert.Equal(HttpStatusCode.NoContent, (await client.PostAsync("/api/sessions/revoke-others", null)).StatusCode);
        Assert.Single((await client.GetFromJsonAsync<JsonArray>("/api/sessions"))!);

        // Tokens: created (JSON and form), used, refused on account security, listed, revoked.
        var created = await client.PostAsJsonAsync("/api/tokens", new { name = "bot", expiresInDays = 30, password = SmokeUsers.Password });
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var token = (await created.Content.ReadFromJsonAsync<JsonObject>())!;
        Assert.StartsWith("amspat_", token["token"]!.GetValue<string>());
        Assert.Equal(HttpStatusCode.BadRequest, (await client.PostAsJsonAsync("/api/tokens", new { name = "bot", expiresInDays = 0, password = SmokeUsers.Password })).StatusCode);
        var form = await client.PostAsync("/settings/tokens", new FormUrlEncodedContent(new Dictionary<string, string> { ["name"] = "form bot", ["expiresInDays"] = "7", ["password"] = SmokeUsers.Password }));
        Assert.Equal(HttpStatusCode.OK, form.StatusCode);
        Assert.Contains("amspat_", await form.Content.ReadAsStringAsync());
        using (var pat = Bearer(app.Client(), token["token"]!.GetValue<string>()))
        {
            Assert.Equal(HttpStatusCode.OK, (await pat.GetAsync("/api/me")).StatusCode);
            Assert.Equal(HttpStatusCode.Forbidden, (await pat.GetAsync("/api/sessions")).StatusCode);
            Assert.Equal(HttpStatusCode.Forbidden, (await pat.GetAsync("/api/tokens")).StatusCode);
            Assert.Equal(HttpStatusCode.Forbidden, (await pat.PostAsJsonAsync("/api/account/password", new { currentPassword = Password, newPassword = NewPassword })).StatusCode);
            var tokens = (await client.GetFromJsonAsync<JsonArray>("/api/tokens"))!;
            Assert.Equal(["form bot", "bot"], tokens.Select(t => t!["name"]!.GetValue<string>()));
            Assert.NotNull(tokens[1]!["lastUsedAt"]);
            Assert.Equal(HttpStatusCode.NoContent, (await client.DeleteAsync($"/api/tokens/{token["id"]!.GetValue<string>()}")).StatusCode);
            Assert.Equal(HttpStatusCode.Unauthorized, (await pat.GetAsync("/api/me")).StatusCode);
            Assert.Equal(HttpStatusCode.NotFound, (await client.DeleteAsync($"/api/tokens/{token["id"]!.GetValue<string>()}")).StatusCode);
        }

        // Password change: validation, wrong current password, success.
        Assert.Equal(HttpStatusCode.BadRequest, (await client.PostAsJsonAsync("/api/account/password", new { currentPassword = Password, newPassword = "short" })).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await client.PostAsJsonAsync("/api/account/password", new { currentPassword = "wrong wrong wrong", newPassword = NewPassword })).StatusCode);
        var changeForm = await client.PostAsync("/settings/password", new FormUrlEncodedContent(new Dictionary<string, string> { ["currentPassword"] = Password, ["newPassword"] = "x" }));
        Assert.Equal(HttpStatusCode.UnprocessableEntity, changeForm.StatusCode);
        Assert.Equal(HttpStatusCode.NoContent, (await client.PostAsJsonAsync("/api/account/password", new { currentPassword = Password, newPassword = NewPassword })).StatusCode);
        await LoginAsync(name, "smoke/4", NewPassword);

        var history = (await client.GetFromJsonAsync<JsonArray>("/api/account/security-events?limit=100"))!;
        var kinds = history.Select(e => e!["kind"]!.GetValue<string>()).ToList();
        foreach (var kind in new[] { "login", "session.revoked", "token.created", "token.revoked", "login.failed", "password.changed" })
            Assert.Contains(kind, kinds);
        Assert.Single((await client.GetFromJsonAsync<JsonArray>("/api/account/security-events?limit=1"))!);
        Assert.Equal(HttpStatusCode.BadRequest, (await client.GetAsync("/api/account/security-events?limit=0")).StatusCode);

        var settings = await client.GetAsync("/settings");
        Assert.Equal(HttpStatusCode.OK, settings.StatusCode);
        Assert.Contains("Security history", await settings.Content.ReadAsStringAsync());
    }
}
