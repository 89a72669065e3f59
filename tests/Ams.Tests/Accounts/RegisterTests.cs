using System.Net;
using Ams.Tests.Support;

namespace Ams.Tests.Accounts;

public sealed class RegisterTests(Services services) : IClassFixture<Services>
{
    [Fact]
    public async Task Register_returns_the_user_with_a_lower_cased_name_and_default_display_name()
    {
        var app = await services.AppAsync();
        var name = Api.UniqueName("Mixed");
        var user = await app.RegisterAsync(name);
        Assert.Equal(name.ToLowerInvariant(), user["username"]!.GetValue<string>());
        Assert.Equal(name.ToLowerInvariant(), user["displayName"]!.GetValue<string>());
        Assert.False(string.IsNullOrEmpty(user["id"]!.GetValue<string>()));
    }

    [Fact]
    public async Task Display_name_comes_back_byte_exact()
    {
        var app = await services.AppAsync();
        const string displayName = "<script>alert('x')</script> & \"Zoë\" 🦊";
        var user = await app.RegisterAsync(Api.UniqueName(), displayName: displayName);
        Assert.Equal(displayName, user["displayName"]!.GetValue<string>());
        // Spaces around it are not part of it, as with a group's title.
        Assert.Equal("Zoë", (await app.RegisterAsync(Api.UniqueName(), displayName: "  Zoë  "))["displayName"]!.GetValue<string>());
    }

    [Fact]
    public async Task A_taken_username_is_409_whatever_its_case()
    {
        var app = await services.AppAsync();
        var name = Api.UniqueName("dup");
        await app.RegisterAsync(name);
        var result = await app.Scenario(s =>
        {
            s.Post.Json(new { username = name.ToUpperInvariant(), password = Api.Password }).ToUrl("/api/register");
            s.StatusCodeShouldBe(409);
        });
        await result.ProblemAsync(409);
    }

    [Fact]
    public async Task Concurrent_registrations_of_one_name_create_exactly_one_user()
    {
        var app = await services.AppAsync();
        var name = Api.UniqueName("race");
        var client = app.Server.CreateClient();
        var attempts = Enumerable.Range(0, 8).Select(i => client.PostAsync("/api/register", JsonContent(new
        {
            username = i % 2 == 0 ? name : name.ToUpperInvariant(),
            password = Api.Password,
        })));
        var statuses = (await Task.WhenAll(attempts)).Select(r => (int)r.StatusCode).ToList();
        Assert.Equal(1, statuses.Count(s => s == 201));
        Assert.Equal(7, statuses.Count(s => s == 409));
        var count = await services.SqlAsync($"SELECT COUNT(*) FROM users WHERE username = '{name.ToLowerInvariant()}'");
        Assert.Equal("1", count.Trim().Split('\n').Last().Trim());
    }

    public static TheoryData<string, string, string?, string> InvalidRows => new()
    {
        { "ab", Api.Password, null, "username" },
        { new string('a', 33), Api.Password, null, "username" },
        { "bad name", Api.Password, null, "username" },
        { "émile", Api.Password, null, "username" },
        { "", Api.Password, null, "username" },
        { "valid_name\n", Api.Password, null, "username" },         // .NET's $ would let a final line break through
        { "valid_name", "short pass1", null, "password" },            // 11 characters
        { "valid_name", new string('p', 129), null, "password" },
        { "valid_name", "", null, "password" },
        { "valid_name", "1qaz2wsx3edc", null, "password" },           // on the common list
        { "valid_name", "Q1W2E3R4T5Y6", null, "password" },           // on the list, other case
        { "valid_name_x", "VALID_NAME_X", null, "password" },         // the username itself
        { "valid_name", Api.Password, "", "displayName" },
        { "valid_name", Api.Password, "   ", "displayName" },
        { "valid_name", Api.Password, new string('d', 65), "displayName" },
        { "valid_name", Api.Password, "tab\there", "displayName" },
        { "valid_name", Api.Password, "evil\u202Eeman", "displayName" },
        { "valid_name", Api.Password, "\u200B", "displayName" },          // zero-width space
        { "valid_name", Api.Password, "\u3164\uFE0F", "displayName" },   // a blank filler and a variation selector
        { "valid_name", Api.Password, "\u034F", "displayName" },          // combining grapheme joiner
    };

    [Theory]
    [MemberData(nameof(InvalidRows))]
    public async Task Invalid_input_is_400_naming_the_field(string username, string password, string? displayName, string field)
    {
        var app = await services.AppAsync();
        var result = await app.Scenario(s =>
        {
            s.Post.Json(new { username, password, displayName }).ToUrl("/api/register");
            s.StatusCodeShouldBe(400);
        });
        var problem = await result.ProblemAsync(400);
        Assert.Contains(field, Api.ErrorNames(problem));
    }

    [Theory]
    [InlineData("password", "bad \\ud800 surrogate pw")]
    [InlineData("displayName", "lone \\udc00")]
    public async Task Lone_surrogates_are_400(string field, string escapedValue)
    {
        var app = await services.AppAsync();
        var body = field == "password"
            ? $$"""{"username":"{{Api.UniqueName()}}","password":"{{escapedValue}}"}"""
            : $$"""{"username":"{{Api.UniqueName()}}","password":"{{Api.Password}}","displayName":"{{escapedValue}}"}""";
        var result = await app.Scenario(s =>
        {
            s.Post.Text(body).ToUrl("/api/register");
            s.WithRequestHeader("Content-Type", "application/json");
            s.StatusCodeShouldBe(400);
        });
        Assert.Contains(field, Api.ErrorNames(await result.ProblemAsync(400)));
    }

    [Theory]
    [InlineData("twelve chars")]                                        // exactly 12
    [InlineData("🦊🦊🦊🦊🦊🦊🦊🦊🦊🦊🦊🦊")]                                     // 12 characters, 24 UTF-16 units
    public async Task Password_length_counts_characters(string password)
    {
        var app = await services.AppAsync();
        await app.RegisterAsync(Api.UniqueName(), password);
    }

    [Fact]
    public async Task A_128_character_password_is_accepted_and_129_is_not()
    {
        var app = await services.AppAsync();
        var ok = string.Concat(Enumerable.Repeat("é", 128));
        await app.RegisterAsync(Api.UniqueName(), ok);
        await app.Scenario(s =>
        {
            s.Post.Json(new { username = Api.UniqueName(), password = ok + "x" }).ToUrl("/api/register");
            s.StatusCodeShouldBe(400);
        });
    }

    [Theory]
    [InlineData("{\"username\":")]
    [InlineData("not json")]
    [InlineData("{\"username\": 42, \"password\": \"correct horse battery\"}")]
    [InlineData("{\"username\": \"okname\", \"password\": [1,2]}")]
    [InlineData("[]")]
    [InlineData("")]
    public async Task Malformed_json_and_wrong_types_are_400(string body)
    {
        var app = await services.AppAsync();
        var result = await app.Scenario(s =>
        {
            s.Post.Text(body).ToUrl("/api/register");
            s.WithRequestHeader("Content-Type", "application/json");
            s.StatusCodeShouldBe(400);
        });
        await result.ProblemAsync(400);
    }

    [Fact]
    public async Task Unknown_fields_are_ignored()
    {
        var app = await services.AppAsync();
        var name = Api.UniqueName();
        await app.Scenario(s =>
        {
            s.Post.Text($$$"""{"username":"{{{name}}}","password":"{{{Api.Password}}}","isAdmin":true,"extra":{"a":[1]}}""").ToUrl("/api/register");
            s.WithRequestHeader("Content-Type", "application/json");
            s.StatusCodeShouldBe(201);
        });
    }

    [Fact]
    public async Task A_body_over_64_KiB_is_413_and_nothing_is_stored()
    {
        var app = await services.AppAsync();
        var name = Api.UniqueName("big");
        var result = await app.Scenario(s =>
        {
            s.Post.Text($$"""{"username":"{{name}}","password":"{{Api.Password}}","displayName":"{{new string('x', 70_000)}}"}""").ToUrl("/api/register");
            s.WithRequestHeader("Content-Type", "application/json");
            s.StatusCodeShouldBe(413);
        });
        await result.ProblemAsync(413);
        var count = await services.SqlAsync($"SELECT COUNT(*) FROM users WHERE username = '{name}'");
        Assert.Equal("0", count.Trim().Split('\n').Last().Trim());
    }

    [Fact]
    public async Task A_non_json_content_type_is_415_problem()
    {
        var app = await services.AppAsync();
        var result = await app.Scenario(s =>
        {
            s.Post.Text("username=a&password=b").ToUrl("/api/register");
            s.WithRequestHeader("Content-Type", "text/plain");
            s.StatusCodeShouldBe(415);
        });
        await result.ProblemAsync(415);
    }

    [Fact]
    public async Task The_password_is_stored_as_an_argon2id_phc_string_at_owasp_parameters()
    {
        // A host without any Passwords:* setting, as in production (test hosts hash cheaply).
        await using var app = await services.StartAppAsync(settings: Services.ProductionPasswords);
        var name = Api.UniqueName("hash");
        await app.RegisterAsync(name, "my very own secret pw");
        var hash = (await services.SqlAsync($"SELECT password_hash FROM users WHERE username = '{name}'"))
            .Trim().Split('\n').Last().Trim();
        Assert.StartsWith("$argon2id$v=19$m=19456,t=2,p=1$", hash);
        Assert.DoesNotContain("my very own secret pw", hash);
    }

    static HttpContent JsonContent(object value) => System.Net.Http.Json.JsonContent.Create(value);

    [Fact]
    public async Task A_name_with_a_trailing_newline_is_invalid_not_a_second_account()
    {
        var app = await services.AppAsync();
        var name = Api.UniqueName("nl");
        await app.RegisterAsync(name);
        foreach (var username in new[] { name + "\n", new string('a', 32) + "\n", name + "\r\n" })
        {
            var result = await app.Scenario(s =>
            {
                s.Post.Json(new { username, password = Api.Password }).ToUrl("/api/register");
                s.StatusCodeShouldBe(400);
            });
            Assert.Contains("username", Api.ErrorNames(await result.ProblemAsync(400)));
        }
    }
}
