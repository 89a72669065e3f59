using Ams.Infrastructure;
using System.Net;
using Invites = Ams.Features.Register.Invites;
using Ams.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using MySqlConnector;

namespace Ams.Tests.Accounts;

/// <summary>Registration__Mode: closed refuses every registration (API and page); invite needs a usable code, taken once per use.</summary>
public sealed class RegistrationModeTests(Services services) : IClassFixture<Services>
{
    [Fact]
    public async Task Closed_refuses_register_with_403_and_the_page_says_so()
    {
        await using var app = await services.StartAppAsync(settings: [new("Registration:Mode", "closed")]);
        var name = Api.UniqueName("cl");
        var result = await app.Scenario(s =>
        {
            s.Post.Json(new { username = name, password = Api.Password }).ToUrl("/api/register");
            s.StatusCodeShouldBe(403);
        });
        var problem = await result.ProblemAsync(403);
        Assert.Equal("Registration closed", problem["title"]!.GetValue<string>());
        Assert.Equal("0", (await services.SqlAsync($"SELECT COUNT(*) FROM users WHERE username = '{name}'")).Trim().Split('\n').Last().Trim());
        var page = await app.Scenario(s => s.Get.Url("/register"));
        var html = await page.ReadAsTextAsync();
        Assert.Contains("Registration is closed", html);
        Assert.DoesNotContain("<form id=\"register\"", html);
        // Signing in still works for existing accounts: closed is about new ones only. The sign-in
        // page sends nobody to a registration that is closed (it offered "Create an account").
        var login = await (await app.Scenario(s => { s.Get.Url("/login"); s.StatusCodeShouldBe(200); })).ReadAsTextAsync();
        Assert.Contains("<form id=\"login\"", login);
        Assert.DoesNotContain("href=\"/register\"", login);
        var browser = new Ams.Tests.Browser.Browser(app);
        await browser.GetAsync("/login");
        var refused = await browser.PostFormAsync("/login", new() { ["username"] = name, ["password"] = "not the password at all" }, 401, htmx: true);
        var form = await refused.ReadAsTextAsync();
        Assert.Contains("<form id=\"login\"", form);
        Assert.DoesNotContain("href=\"/register\"", form);
        var open = await services.AppAsync();
        Assert.Contains("href=\"/register\"", await (await open.Scenario(s => s.Get.Url("/login"))).ReadAsTextAsync());
    }

    [Theory]
    [InlineData("closed", "warning: Registration__Mode is closed here, so nobody can register")]
    [InlineData("open", "note: Registration__Mode is open here, so anyone registers without a code")]
    [InlineData("invite", "")]
    public async Task Admin_invite_says_when_this_configuration_does_not_ask_for_codes(string mode, string said)
    {
        await using var app = await services.StartAppAsync(settings: [new("Registration:Mode", mode)]);
        var (stdout, stderr) = (new StringWriter(), new StringWriter());
        Assert.Equal(0, await Ams.Features.Admin.Cli.RunAsync(app.Services, ["invite"], new StringReader(""), stdout, stderr));
        Assert.StartsWith("ami_", stdout.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries)[^1]);
        if (said == "") Assert.Equal("", stderr.ToString());
        else Assert.StartsWith(said, stderr.ToString());
    }

    [Fact]
    public async Task Invite_codes_are_stored_hashed_and_refused_alike_when_missing_unknown_or_used()
    {
        await using var app = await services.StartAppAsync(settings: [new("Registration:Mode", "invite")]);
        var db = app.Services.GetRequiredService<MariaDb>();
        var code = await Invites.CreateAsync(db, 1, DateTime.UtcNow);
        var stored = await services.SqlAsync("SELECT code_hash FROM invites");
        Assert.DoesNotContain(code, stored);
        Assert.Contains(Invites.HashOf(code), stored);

        async Task<string> RefusedAsync(object body)
        {
            var result = await app.Scenario(s => { s.Post.Json(body).ToUrl("/api/register"); s.StatusCodeShouldBe(403); });
            var problem = await result.ProblemAsync(403);
            problem.Remove("traceId");
            return problem.ToJsonString();
        }
        var missing = await RefusedAsync(new { username = Api.UniqueName("iv"), password = Api.Password });
        var unknown = await RefusedAsync(new { username = Api.UniqueName("iv"), password = Api.Password, invite = "ami_nope" });
        var name = Api.UniqueName("iv");
        await app.Scenario(s => { s.Post.Json(new { username = name, password = Api.Password, invite = code }).ToUrl("/api/register"); s.StatusCodeShouldBe(201); });
        var used = await RefusedAsync(new { username = Api.UniqueName("iv"), password = Api.Password, invite = code });
        Assert.Equal(missing, unknown);
        Assert.Equal(missing, used);

        // A taken name does not use up the invite.
        var second = await Invites.CreateAsync(db, 1, DateTime.UtcNow);
        await app.Scenario(s => { s.Post.Json(new { username = name, password = Api.Password, invite = second }).ToUrl("/api/register"); s.StatusCodeShouldBe(409); });
        await app.Scenario(s => { s.Post.Json(new { username = Api.UniqueName("iv"), password = Api.Password, invite = second }).ToUrl("/api/register"); s.StatusCodeShouldBe(201); });
    }

    [Fact]
    public async Task Concurrent_registrations_cannot_share_a_single_use_invite()
    {
        await using var app = await services.StartAppAsync(settings: [new("Registration:Mode", "invite")]);
        var code = await Invites.CreateAsync(app.Services.GetRequiredService<MariaDb>(), 1, DateTime.UtcNow);
        var client = app.Server.CreateClient();
        var attempts = Enumerable.Range(0, 6).Select(_ => client.PostAsync("/api/register", new StringContent(
            $$"""{"username":"{{Api.UniqueName("rc")}}","password":"{{Api.Password}}","invite":"{{code}}"}""", System.Text.Encoding.UTF8, "application/json")));
        var statuses = (await Task.WhenAll(attempts)).Select(r => r.StatusCode).ToList();
        Assert.Equal(1, statuses.Count(s => s == HttpStatusCode.Created));
        Assert.Equal(5, statuses.Count(s => s == HttpStatusCode.Forbidden));
    }
}
