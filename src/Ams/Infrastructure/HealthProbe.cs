using System.Net;

namespace Ams.Infrastructure;

/// <summary>
/// <c>Ams --healthcheck</c>: the container HEALTHCHECK. The runtime image has no curl, so the
/// binary asks its own /healthz and exits 0 only on 200. It probes where the server listens:
/// <c>AMS_HEALTHCHECK_URL</c> if set, else the first http listener of Kestrel's own endpoint
/// settings (<c>Kestrel__Endpoints__NAME__Url</c>, which replace the others for the server; one
/// that speaks HTTP/1.1 before an HTTP/2-only one, which is asked over HTTP/2), else the first http
/// URL of <c>ASPNETCORE_URLS</c>, else the first of <c>ASPNETCORE_HTTP_PORTS</c>, else the default
/// 8082 (wildcard hosts become 127.0.0.1).
/// </summary>
public static class HealthProbe
{
    public const string Flag = "--healthcheck";

    public static async Task<int> RunAsync()
    {
        var names = Environment.GetEnvironmentVariables().Keys.Cast<string>();
        var (url, http2) = Target(Environment.GetEnvironmentVariable, names);
        using var client = new HttpClient { Timeout = TimeSpan.FromSeconds(3) };
        try
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, url);
            if (http2) (request.Version, request.VersionPolicy) = (HttpVersion.Version20, HttpVersionPolicy.RequestVersionExact);
            using var response = await client.SendAsync(request);
            Console.WriteLine($"{url}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
            return response.IsSuccessStatusCode ? 0 : 1;
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException or InvalidOperationException or UriFormatException)
        {
            Console.WriteLine($"{url}: {e.Message}");
            return 1;
        }
    }

    /// <summary>The URL to probe (<paramref name="names"/>: the environment's variable names), and whether only HTTP/2 is spoken there.</summary>
    public static (string Url, bool Http2) Target(Func<string, string?> environment, IEnumerable<string> names)
    {
        if (environment("AMS_HEALTHCHECK_URL") is { Length: > 0 } configured) return (configured, false);
        const string prefix = "Kestrel__Endpoints__", suffix = "__Url";
        var all = names.ToList();
        // Configuration keys are case-blind; the environment's names are not.
        string? Setting(string name) => all.Find(n => string.Equals(n, name, StringComparison.OrdinalIgnoreCase)) is { } found ? environment(found) : null;
        var endpoints = all
            .Where(name => name.StartsWith(prefix, StringComparison.OrdinalIgnoreCase) && name.EndsWith(suffix, StringComparison.OrdinalIgnoreCase))
            .Order(StringComparer.OrdinalIgnoreCase)
            .Select(name => (Url: Probe(environment(name)), Http2: string.Equals(Setting(name[..^suffix.Length] + "__Protocols")?.Trim(), "Http2", StringComparison.OrdinalIgnoreCase)))
            .Where(endpoint => endpoint.Url is not null)
            .OrderBy(endpoint => endpoint.Http2)
            .ToList();
        if (endpoints is [var endpoint, ..]) return (endpoint.Url!, endpoint.Http2);
        return (Url(environment), false);
    }

    static string Url(Func<string, string?> environment)
    {
        var urls = environment("ASPNETCORE_URLS") is { Length: > 0 } u ? u : environment("URLS");
        foreach (var url in (urls ?? "").Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            if (Probe(url) is { } probe) return probe;
        var ports = environment("ASPNETCORE_HTTP_PORTS") is { Length: > 0 } p ? p : environment("HTTP_PORTS");
        if (ports?.Split([',', ';'], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries) is [var first, ..])
            return $"http://127.0.0.1:{first}/healthz";
        return "http://127.0.0.1:8082/healthz";
    }

    // An http:// listener's /healthz; null for anything else (https, a pipe).
    static string? Probe(string? url)
    {
        url = url?.Trim();
        if (url is null || !url.StartsWith("http://", StringComparison.OrdinalIgnoreCase)) return null;
        var authority = url["http://".Length..].Split('/')[0];
        var colon = authority.LastIndexOf(':');
        var (host, port) = colon > 0 && !authority.EndsWith(']') ? (authority[..colon], authority[(colon + 1)..]) : (authority, "80");
        if (host is "+" or "*" or "0.0.0.0" or "[::]" or "localhost" or "") host = "127.0.0.1";
        return $"http://{host}:{port}/healthz";
    }
}
