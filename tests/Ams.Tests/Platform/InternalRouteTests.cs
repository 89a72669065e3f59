using Ams.Tests.Support;

namespace Ams.Tests.Platform;

public sealed class InternalRouteTests(Services services) : IClassFixture<Services>
{
    [Theory]
    [InlineData("/_test_url_cache_")]
    [InlineData("/_TEST_URL_CACHE_")]
    public async Task FastEndpoints_test_route_is_not_served_and_names_no_type(string path)
    {
        var app = await services.AppAsync();
        var result = await app.Scenario(s =>
        {
            s.Get.Url(path);
            s.StatusCodeShouldBe(404);
        });
        var body = await result.ReadAsTextAsync();
        Assert.StartsWith("application/problem+json", result.Context.Response.ContentType);
        Assert.DoesNotContain("Ams.Features", body);
    }
}
