namespace Ams.Infrastructure;

/// <summary>
/// <c>Ams --healthcheck</c>: the container HEALTHCHECK. The runtime image has no curl, so the
/// binary asks its own /healthz and exits 0 only on 200.
/// </summary>
public static class HealthProbe
{
    public const string Flag = "--healthcheck";

    public static async Task<int> RunAsync()
    {
        var url = Environment.GetEnvironmentVariable("AMS_HEALTHCHECK_URL") ?? "http://127.0.0.1:8082/healthz";
        using var client = new HttpClient { Timeout = TimeSpan.FromSeconds(3) };
        try
        {
            using var response = await client.GetAsync(url);
            Console.WriteLine($"{url}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
            return response.IsSuccessStatusCode ? 0 : 1;
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
        {
            Console.WriteLine($"{url}: {e.Message}");
            return 1;
        }
    }
}
