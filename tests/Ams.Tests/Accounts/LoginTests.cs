using System.Text;
using Ams.Infrastructure;
using Ams.Tests.Support;
using StackExchange.Redis;

namespace Ams.Tests.Accounts;

public sealed class LoginTests(Services services) : IClassFixture<Services>
{
    [Fact]
    public async Task Login_returns_a_256_bit_token_its_expiry_and_the_user()
    {
        var app = await services.AppAsync();
        var name = Api.UniqueName();
        await app.RegisterAsync(name, displayName: "Zoë");
        var result = await app.Scenario(s =>
        {
            s.Post.Json(new { username = name.ToUpperInvariant(), password = Api.Password }).ToUrl("/api/login");
            s.From("198.51.100.7");
            s.StatusCodeShouldBe(200);
        });
        var body = await result.JsonAsync();
        var token = body["token"]!.GetValue<string>();
        Assert.StartsWith("ams_", token);
        Assert.True(Convert.FromBase64String(Base64UrlToBase64(token["ams_".Length..])).Length >= 32);
        Assert.Matches(@"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", body["expiresAt"]!.GetValue<string>());
        var expires = DateTimeOffset.Parse(body["expiresAt"]!.GetValue<string>());
        Assert.InRange(expires, DateTimeOffset.UtcNow.AddDays(6), DateTimeOffset.UtcNow.AddDays(8));
        var user = body["user"]!;
        Assert.Equal(name, user["username"]!.GetValue<string>());
        Assert.Equal("Zoë", user["displayName"]!.GetValue<string>());
        Assert.False(user["twoFactorEnabled"]!.GetValue<bool>());
        Assert.Matches(@"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", user["createdAt"]!.GetValue<string>());

        var me = await app.Scenario(s =>
        {
            s.Get.Url("/api/me");
            s.WithBearerToken(token);
            s.StatusCodeShouldBe(200);
        });
        Assert.Equal(user.ToJsonString(), (await me.JsonAsync()).ToJsonString());
        Assert.Equal("no-store", me.Context.Response.Headers.CacheControl.ToString());
    }

    [Fact]
    public async Task Redis_holds_only_a_hash_of_the_token()
    {
        var app = await services.AppAsync();
        var token = await app.NewUserTokenAsync();
        await using var redis = await ConnectionMultiplexer.ConnectAsync(services.Redis.ConnectionString);
        var server = redis.GetServer(redis.GetEndPoints()[0]);
        var db = redis.GetDatabase();
        var sessionKeys = server.Keys(pattern: "ams:session:*").ToList();
        Assert.NotEmpty(sessionKeys);
        foreach (var key in server.Keys(pattern: "ams:*"))
        {
            Assert.DoesNotContain(token, key.ToString());
            if (await db.KeyTypeAsync(key) == RedisType.String)
                Assert.DoesNotContain(token, (string?)await db.StringGetAsync(key) ?? "");
        }
    }

    [Fact]
    public async Task Unknown_user_and_wrong_password_look_the_same()
    {
        // At the production cost: at the test hosts' cheap one an Argon2id verification is too
        // quick to tell apart from returning early.
        await using var app = await services.StartAppAsync(settings: Services.ProductionPasswords);
        var name = Api.UniqueName();
        await app.RegisterAsync(name);
        async Task<(int, string, TimeSpan)> Fail(string username)
        {
            var started = System.Diagnostics.Stopwatch.StartNew();
            var result = await app.Scenario(s =>
            {
                s.Post.Json(new { username, password = "not the password" }).ToUrl("/api/login");
                s.From("198.51.100.8");
                s.StatusCodeShouldBe(401);
            });
            var problem = await result.ProblemAsync(401);
            problem.Remove("traceId");
            return (result.Context.Response.StatusCode, problem.ToJsonString(), started.Elapsed);
        }
        var wrongPassword = await Fail(name);
        var unknownUser = await Fail(Api.UniqueName("ghost"));
        Assert.Equal(wrongPassword.Item1, unknownUser.Item1);
        Assert.Equal(wrongPassword.Item2, unknownUser.Item2);
        // Both paths run one Argon2id verification; neither returns early.
        Assert.True(unknownUser.Item3 > TimeSpan.FromMilliseconds(5), $"unknown user answered in {unknownUser.Item3.TotalMilliseconds} ms");
    }

    [Theory]
    [InlineData(" correct horse battery staple")]
    [InlineData("correct horse battery staple ")]
    [InlineData("Correct horse battery staple")]
    public async Task The_password_is_checked_exactly_as_typed(string variant)
    {
        var app = await services.AppAsync();
        var name = Api.UniqueName();
        await app.RegisterAsync(name);
        await app.Scenario(s =>
        {
            s.Post.Json(new { username = name, password = variant }).ToUrl("/api/login");
            s.From("198.51.100.9");
            s.StatusCodeShouldBe(401);
        });
    }

    [Fact]
    public async Task Unicode_passwords_are_not_normalised()
    {
        var app = await services.AppAsync();
        var name = Api.UniqueName();
        var composed = "caf\u00e9 au lait pour moi";
        await app.RegisterAsync(name, composed);
        await app.LoginAsync(name, composed);
        await app.Scenario(s =>
        {
            s.Post.Json(new { username = name, password = composed.Normalize(NormalizationForm.FormD) }).ToUrl("/api/login");
            s.From("198.51.100.10");
            s.StatusCodeShouldBe(401);
        });
    }

    [Theory]
    [InlineData("{\"username\":\"x\"}", "password")]
    [InlineData("{\"password\":\"x\"}", "username")]
    [InlineData("{\"username\":\"x\",\"password\":7}", "password")]
    [InlineData("{oops", null)]
    public async Task Bad_login_requests_are_400(string body, string? field)
    {
        var app = await services.AppAsync();
        var result = await app.Scenario(s =>
        {
            s.Post.Text(body).ToUrl("/api/login");
            s.WithRequestHeader("Content-Type", "application/json");
            s.StatusCodeShouldBe(400);
        });
        var problem = await result.ProblemAsync(400);
        if (field is not null) Assert.Contains(field, Api.ErrorNames(problem));
    }

    [Fact]
    public async Task Hashes_made_with_weaker_parameters_are_upgraded_on_login()
    {
        await using var app = await services.StartAppAsync(settings: Services.ProductionPasswords);
        var name = Api.UniqueName("old");
        await app.RegisterAsync(name);
        var weak = await new Passwords(8 * 1024 * 1024, 1).HashAsync(Api.Password);
        Assert.Contains("m=8192,t=1", weak);
        await services.SqlAsync($"UPDATE users SET password_hash = '{weak}' WHERE username = '{name}'");
        await app.LoginAsync(name);
        var stored = (await services.SqlAsync($"SELECT password_hash FROM users WHERE username = '{name}'"))
            .Trim().Split('\n').Last().Trim();
        Assert.StartsWith("$argon2id$v=19$m=19456,t=2,p=1$", stored);
        await app.LoginAsync(name);
    }

    static string Base64UrlToBase64(string s) => s.Replace('-', '+').Replace('_', '/') + new string('=', (4 - s.Length % 4) % 4);
}
