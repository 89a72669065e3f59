using System.Collections.Concurrent;
using System.Net;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;

namespace Ams.Testing;

/// <summary>
/// A loopback OTLP/HTTP endpoint that records what an exporter posts. No OTLP collector is packaged
/// for Debian 12 (its Prometheus, 2.42, predates the OTLP receiver), so this stands in for one; the
/// wire format under test is OpenTelemetry's exporter's, not ours.
/// </summary>
public sealed class OtlpCollector : IAsyncDisposable
{
    public sealed record Request(string Path, string? ContentType, string Text);

    readonly WebApplication app;
    readonly ConcurrentQueue<Request> received = new();

    OtlpCollector(WebApplication app) => this.app = app;

    public string Address { get; private set; } = "";
    public IReadOnlyCollection<Request> Received => received;

    public static async Task<OtlpCollector> StartAsync()
    {
        var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions());
        builder.WebHost.UseKestrelCore().ConfigureKestrel(o => o.Listen(IPAddress.Loopback, 0));
        var collector = new OtlpCollector(builder.Build());
        collector.app.Run(async http =>
        {
            using var body = new MemoryStream();
            await http.Request.Body.CopyToAsync(body);
            // Protobuf keeps strings as UTF-8 bytes: names and attributes are findable as text.
            collector.received.Enqueue(new Request(http.Request.Path, http.Request.ContentType, Encoding.UTF8.GetString(body.ToArray())));
            http.Response.ContentType = "application/x-protobuf";
        });
        await collector.app.StartAsync();
        var address = collector.app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        collector.Address = $"http://127.0.0.1:{new Uri(address).Port}";
        return collector;
    }

    public async ValueTask DisposeAsync() => await app.DisposeAsync();
}
