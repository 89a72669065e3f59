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
        Assert.Equal(expected, HealthProbe.Url(name => environment.GetValueOrDefault(name)));
    }
}
