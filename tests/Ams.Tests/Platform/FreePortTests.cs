using Ams.Testing;

namespace Ams.Tests.Platform;

/// <summary>The fixtures' port picker: a server given two ports (Caddy's http_port and https_port) must get two.</summary>
public sealed class FreePortTests
{
    [Fact]
    public void Ports_handed_out_one_after_another_are_all_different()
    {
        // The kernel hands a just-closed port out again now and then (Caddy once got one port for both).
        var ports = Enumerable.Range(0, 1000).Select(_ => FreePort.Next()).ToList();
        Assert.Equal(ports.Count, ports.Distinct().Count());
    }
}
