using System.Text.Json;
using Ams.Tests.Messaging;
using Ams.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Ams.Tests.Platform;

/// <summary>
/// Each slice has its own JSON context, reached through the resolver chain of the app's options;
/// the output must stay what api.md promises: camelCase, timestamps in UTC with milliseconds.
/// </summary>
public sealed class JsonFormatTests(Services services) : IClassFixture<Services>
{
    [Fact]
    public async Task A_slice_type_written_through_the_app_options_is_camel_case_with_utc_milliseconds()
    {
        var app = await services.AppAsync();
        var options = app.Services.GetRequiredService<IOptions<Microsoft.AspNetCore.Http.Json.JsonOptions>>().Value.SerializerOptions;
        var at = new DateTimeOffset(2026, 11, 25, 19, 0, 0, 123, TimeSpan.FromHours(1));

        var json = JsonSerializer.Serialize(new Features.Login.ChallengeResponse(true, "c", at, "amd_d"), options);

        Assert.Equal("""{"twoFactorRequired":true,"challenge":"c","expiresAt":"2026-11-25T18:00:00.123Z","deviceToken":"amd_d"}""", json);
        Assert.All(Slices.JsonContexts, c => Assert.Contains(c, options.TypeInfoResolverChain));
    }

    [Fact]
    public async Task Every_problem_has_one_Content_Type_whoever_wrote_it()
    {
        var app = await services.AppAsync();
        var alice = await app.MemberAsync("pj");
        var types = new List<string?>();
        // FastEndpoints' validation 400, its malformed-JSON 400, then the app's own: 401, 404, 405, 415.
        types.Add((await app.Scenario(s => { s.Post.Json(new { username = "", password = "x" }).ToUrl("/api/register"); s.StatusCodeShouldBe(400); })).Context.Response.ContentType);
        types.Add((await app.Scenario(s => { s.Post.Text("{\"username\":").ToUrl("/api/register"); s.WithRequestHeader("Content-Type", "application/json"); s.StatusCodeShouldBe(400); })).Context.Response.ContentType);
        types.Add((await app.Scenario(s => { s.Get.Url("/api/me"); s.StatusCodeShouldBe(401); })).Context.Response.ContentType);
        types.Add((await app.Scenario(s => { s.Get.Url("/api/conversations/999999"); s.WithBearerToken(alice.Token); s.StatusCodeShouldBe(404); })).Context.Response.ContentType);
        types.Add((await app.Scenario(s => { s.Delete.Url("/api/version"); s.StatusCodeShouldBe(405); })).Context.Response.ContentType);
        types.Add((await app.Scenario(s => { s.Post.Text("x").ToUrl("/api/login"); s.WithRequestHeader("Content-Type", "text/plain"); s.StatusCodeShouldBe(415); })).Context.Response.ContentType);
        Assert.All(types, type => Assert.Equal("application/problem+json; charset=utf-8", type));
    }

    // Each input with what the encoder must write for it, through both of its searches: the UTF-16
    // one (string encoding) and the UTF-8 one (Utf8JsonWriter, which the serializer uses).
    public static TheoryData<string, string> Texts => new()
    {
        { "Привет 中文 é", "Привет 中文 é" },
        { "👍🏽 🇩🇪 x", "👍🏽 🇩🇪 x" },
        { "a<b>&'\"c", @"a\u003Cb\u003E\u0026\u0027\u0022c" },
        { "line\u2028sep\u0007", @"line\u2028sep\u0007" },
        { "👍<", @"👍\u003C" },
        { "non\U0001FFFEchar", @"non\uD83F\uDFFEchar" },
        { "private\U000F0000use", @"private\uDB80\uDC00use" },
        { "C++", @"C\u002B\u002B" },
    };

    [Theory]
    [MemberData(nameof(Texts))]
    public void The_readable_encoder_writes_every_script_and_emoji_as_is_and_escapes_what_html_and_javascript_need_escaped(string text, string expected)
    {
        Assert.Equal(expected, ReadableJsonEncoder.Instance.Encode(text));
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = ReadableJsonEncoder.Instance }))
            writer.WriteStringValue(System.Text.Encoding.UTF8.GetBytes(text));
        Assert.Equal($"\"{expected}\"", System.Text.Encoding.UTF8.GetString(buffer.WrittenSpan));
    }

    [Fact]
    public void A_lone_surrogate_is_never_written_raw()
    {
        var written = ReadableJsonEncoder.Instance.Encode("x\uD83Dy");
        // Replaced by U+FFFD (raw or escaped), as the built-in encoders do: invalid UTF-16 never goes out.
        Assert.Matches(@"^x(\uFFFD|\\uFFFD)y$", written);
    }
}
