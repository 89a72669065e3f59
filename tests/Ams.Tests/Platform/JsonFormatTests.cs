using System.Text.Json;
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
}
