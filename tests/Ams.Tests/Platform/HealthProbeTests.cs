using Ams.Infrastructure;

namespace Ams.Tests.Platform;

/// <summary>The container HEALTHCHECK probes where the server listens, whichever way the port is configured.</summary>
public sealed class HealthProbeTests
{
    [Theory]
    [InlineData(null, null, null, "http://127.0.0.1:8082/healthz")]
    [InlineData("http://+:9000", null, null, "http://127.0.0.1:9000/healthz")]
    [InlineData("https://+:9443;http://0.0.0.0:9001", null, null, "http://127.0.0.1:9001/healthz")]
    [InlineData("http://localhost:8082", null, null, "http://127.0.0.1:8082/healthz")]
    [InlineData("http://10.1.2.3:7000/", "8082", null, "http://10.1.2.3:7000/healthz")]
    [InlineData(null, "8090,8091", null, "http://127.0.0.1:8090/healthz")]
    [InlineData("http://+:9000", "8090", "http://127.0.0.1:1234/healthz", "http://127.0.0.1:1234/healthz")]
    public void Probe_url_follows_the_configured_listener(string? urls, string? httpPorts, string? explicitUrl, string expected)
    {
        var environment = new Dictionary<string, string?>
        {
            ["ASPNETCORE_URLS"] = urls, ["ASPNETCORE_HTTP_PORTS"] = httpPorts, ["AMS_HEALTHCHECK_URL"] = explicitUrl,
        };
        Assert.Equal((expected, false), HealthProbe.Target(name => environment.GetValueOrDefault(name), environment.Keys));
    }

    // Kestrel's own endpoint settings replace ASPNETCORE_URLS and the ports for the server (an
    // outside check: the probe asked the default port of a node that listened elsewhere, unhealthy).
    [Theory]
    [InlineData("Kestrel__Endpoints__Http__Url=http://0.0.0.0:9100|ASPNETCORE_URLS=http://+:9000", "http://127.0.0.1:9100/healthz", false)]
    [InlineData("Kestrel__Endpoints__H2c__Url=http://127.0.0.1:9101|Kestrel__Endpoints__H2c__Protocols=Http2|Kestrel__Endpoints__Web__Url=http://127.0.0.1:9100", "http://127.0.0.1:9100/healthz", false)]
    [InlineData("KESTREL__ENDPOINTS__H2C__URL=http://127.0.0.1:9101|KESTREL__ENDPOINTS__H2C__PROTOCOLS=http2|ASPNETCORE_HTTP_PORTS=8080", "http://127.0.0.1:9101/healthz", true)]
    [InlineData("Kestrel__Endpoints__Tls__Url=https://+:9443|Kestrel__Endpoints__Plain__Url=http://+:9102", "http://127.0.0.1:9102/healthz", false)]
    [InlineData("Kestrel__Endpoints__Http__Url=http://+:9100|AMS_HEALTHCHECK_URL=http://127.0.0.1:1234/healthz", "http://127.0.0.1:1234/healthz", false)]
    public void Probe_url_follows_Kestrels_own_endpoint_settings_first(string variables, string expected, bool http2)
    {
        var environment = variables.Split('|').Select(pair => pair.Split('=', 2)).ToDictionary(pair => pair[0], pair => (string?)pair[1]);
        Assert.Equal((expected, http2), HealthProbe.Target(name => environment.GetValueOrDefault(name), environment.Keys));
    }
}
