using System.Diagnostics.Metrics;
using Ams.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace Ams.Tests.Platform;

/// <summary>The /metrics text, past the cache of each tag set's labels.</summary>
public sealed class MetricsExpositionTests
{
    /// <summary>An exposition listening to a meter named as AMS's own, from a factory of its own.</summary>
    sealed class Exposed : IDisposable
    {
        readonly ServiceProvider services = new ServiceCollection().AddMetrics().BuildServiceProvider();
        public readonly MetricsExposition Exposition;
        public readonly Meter Meter;

        public Exposed()
        {
            var factory = services.GetRequiredService<IMeterFactory>();
            Exposition = new MetricsExposition(factory);
            Meter = factory.Create(new MeterOptions(AmsMetrics.MeterName));
        }

        public void Dispose()
        {
            Exposition.Dispose();
            services.Dispose();
        }
    }

    static KeyValuePair<string, object?> Tag(string key, object? value) => new(key, value);

    [Fact]
    public void Each_tag_set_counts_in_its_own_series_whatever_the_order_its_tags_come_in()
    {
        using var exposed = new Exposed();
        var (exposition, counter) = (exposed.Exposition, exposed.Meter.CreateCounter<long>("test.requests"));
        for (var round = 0; round < 3; round++)   // the first round fills the cache, the others read it
        {
            counter.Add(1, Tag("route", "/a"), Tag("status", 201));
            counter.Add(10, Tag("status", 201), Tag("route", "/a"));
            counter.Add(100, Tag("route", "/b"), Tag("status", 201));
            counter.Add(1000, Tag("route", "/a"), Tag("status", 404));
            counter.Add(10000, Tag("route", "/a"), Tag("status", 201), Tag("method", "POST"));
        }
        var text = exposition.Scrape();
        Assert.Contains("test_requests_total{route=\"/a\",status=\"201\"} 33\n", text);
        Assert.Contains("test_requests_total{route=\"/b\",status=\"201\"} 300\n", text);
        Assert.Contains("test_requests_total{route=\"/a\",status=\"404\"} 3000\n", text);
        Assert.Contains("test_requests_total{method=\"POST\",route=\"/a\",status=\"201\"} 30000\n", text);
    }

    [Fact]
    public void Tag_sets_past_the_cache_bound_still_count_right_and_are_not_kept()
    {
        using var exposed = new Exposed();
        var (exposition, counter) = (exposed.Exposition, exposed.Meter.CreateCounter<long>("test.distinct"));
        for (var round = 0; round < 2; round++)
            for (var i = 0; i < 5000; i++) counter.Add(1, Tag("user", i));
        var text = exposition.Scrape();
        Assert.Contains("test_distinct_total{user=\"0\"} 2\n", text);
        Assert.Contains("test_distinct_total{user=\"4999\"} 2\n", text);
        Assert.Equal(5000, text.Split('\n').Count(l => l.StartsWith("test_distinct_total{", StringComparison.Ordinal)));
        Assert.Equal(4096, exposition.CachedLabelSets);
    }

    [Fact]
    public void Tag_sets_recorded_in_parallel_never_pass_the_cache_bound()
    {
        using var exposed = new Exposed();
        var (exposition, counter) = (exposed.Exposition, exposed.Meter.CreateCounter<long>("test.parallel"));
        // Other tests' HTTP clients record into this exposition too (System.Net.Http has no factory).
        Parallel.For(0, 40_000, new ParallelOptions { MaxDegreeOfParallelism = 8 }, i => counter.Add(1, Tag("user", i)));
        Assert.Equal(4096, exposition.CachedLabelSets);
        Assert.Equal(40_000, exposition.Scrape().Split('\n').Count(l => l.StartsWith("test_parallel_total{", StringComparison.Ordinal)));
    }

    [Fact]
    public void Tags_are_the_same_only_when_every_key_has_an_equal_value()
    {
        KeyValuePair<string, object?>[] known = [Tag("route", "/a"), Tag("status", 201)];
        Assert.True(MetricsExposition.SameTags(known, [Tag("status", 201), Tag("route", "/a")]));
        Assert.False(MetricsExposition.SameTags(known, [Tag("route", "/a"), Tag("status", 404)]));
        Assert.False(MetricsExposition.SameTags(known, [Tag("route", "/a"), Tag("status", "201")]));
        Assert.False(MetricsExposition.SameTags(known, [Tag("route", "/a"), Tag("code", 201)]));
        Assert.False(MetricsExposition.SameTags(known, [Tag("route", "/a")]));
        Assert.False(MetricsExposition.SameTags(known, [Tag("route", "/a"), Tag("status", 201), Tag("method", "GET")]));
    }
}
