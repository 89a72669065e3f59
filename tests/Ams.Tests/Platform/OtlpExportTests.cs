using Ams.Testing;
using Ams.Tests.Messaging;
using Ams.Tests.Support;
using Microsoft.Extensions.DependencyInjection;

namespace Ams.Tests.Platform;

/// <summary>OTLP export with OpenTelemetry's own exporter, received by <see cref="OtlpCollector"/>.</summary>
public sealed class OtlpExportTests(Services services) : IClassFixture<Services>
{
    [Fact]
    public async Task With_an_OTLP_endpoint_set_AMS_metrics_are_pushed_over_http_protobuf()
    {
        await using var collector = await OtlpCollector.StartAsync();
        await using var app = await services.StartAppAsync(settings:
        [
            new("OTEL_EXPORTER_OTLP_ENDPOINT", collector.Address),
            new("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
            new("OTEL_METRIC_EXPORT_INTERVAL", "300"),
            new("OTEL_SERVICE_NAME", "ams-otlp-test"),
        ]);
        var members = await app.MembersAsync(2, "ot");
        await app.PostAsync("/api/messages", new { to = members[1].Name, body = "exported" }, members[0].Token, 201);

        // The meter is the process's: another test's node may have counted a send whose batch size
        // it recorded before this exporter began to listen, so an early export may hold the count
        // alone. This node's send puts both in every export after it.
        OtlpCollector.Request? export = null;
        for (var i = 0; i < 100 && export is null; i++, await Task.Delay(100))
            export = collector.Received.FirstOrDefault(r => r.Text.Contains("ams.messages.sent") && r.Text.Contains("ams.send.batch.size"));
        Assert.True(export is not null, $"no export with ams.messages.sent and ams.send.batch.size (the group-commit histogram); {collector.Received.Count} requests to {string.Join(", ", collector.Received.Select(r => r.Path).Distinct())}");
        Assert.Equal("/v1/metrics", export.Path);
        Assert.Equal("application/x-protobuf", export.ContentType);
        Assert.Contains("ams-otlp-test", export.Text);          // service.name
    }

    [Fact]
    public async Task Without_an_endpoint_no_exporter_runs_and_a_malformed_one_stops_the_start_naming_the_setting()
    {
        await using (var quiet = await services.StartAppAsync())
            Assert.Null(quiet.Services.GetService<OpenTelemetry.Metrics.MeterProvider>());

        var error = await Assert.ThrowsAnyAsync<Exception>(() => services.StartAppAsync(settings: [new("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318")]));
        Assert.Contains("OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4318' is not an http:// or https:// URL", error.Message);
    }
}
