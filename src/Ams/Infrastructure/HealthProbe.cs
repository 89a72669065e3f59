namespace Ams.Infrastructure;

/// <summary>
/// <c>Ams --healthcheck</c>: the container HEALTHCHECK. The runtime image has no curl, so the
/// binary asks its own /healthz and exits 0 only on 200. It probes where the server listens:
/// <c>AMS_HEALTHCHECK_URL</c> if set, else the first http URL of <c>ASPNETCORE_URLS</c>, else the
/// first of <c>ASPNETCORE_HTTP_PORTS</c>, else the default 8082 (wildcard hosts become 127.0.0.1).
/// </summary>
public static class HealthProbe
{
    public const string Flag = "--healthcheck";

    public static async Task<int> RunAsync()
    {
        var url = Url(Environment.GetEnvironmentVariable);
        using var client = new HttpClient { Timeout = TimeSpan.FromSeconds(3) };
        try
        {
            using var response = await client.GetAsync(url);
            Console.WriteLine($"{url}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
            return response.IsSuccessStatusCode ? 0 : 1;
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException or InvalidOperationException or UriFormatException)
        {
            Console.WriteLine($"{url}: {e.Message}");
            return 1;
        }
    }

    public static string Url(Func<string, string?> environment)
    {
        if (environment("AMS_HEALTHCHECK_URL") is { Length: > 0 } configured) return configured;
        var urls = environment("ASPNETCORE_URLS") is { Length: > 0 } u ? u : environment("URLS");
        foreach (var url in (urls ?? "").Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (!url.StartsWith("http://", StringComparison.OrdinalIgnoreCase)) continue;
            var authority = url["http://".Length..].Split('/')[0];
            var colon = authority.LastIndexOf(':');
            var (host, port) = colon > 0 && !authority.EndsWith(']') ? (authority[..colon], authority[(colon + 1)..]) : (authority, "80");
            if (host is "+" or "*" or "0.0.0.0" or "[::]" or "localhost" or "") host = "127.0.0.1";
            return $"http://{host}:{port}/healthz";
        }
        var ports = environment("ASPNETCORE_HTTP_PORTS") is { Length: > 0 } p ? p : environment("HTTP_PORTS");
        if (ports?.Split([',', ';'], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries) is [var first, ..])
            return $"http://127.0.0.1:{first}/healthz";
        return "http://127.0.0.1:8082/healthz";
    }
}
