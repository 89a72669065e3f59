using System.Text.RegularExpressions;
using Ams.Testing;

namespace Ams.Smoke;

/// <summary>What a node's own /metrics says, for tests that watch its state from outside.</summary>
static partial class SmokeMetrics
{
    /// <summary>The event streams open on <paramref name="node"/> (<c>ams_events_streams_open</c>).</summary>
    public static async Task<int> OpenStreamsAsync(this AppProcess node)
    {
        using var client = node.Client();
        return int.Parse(OpenStreams().Match(await client.GetStringAsync("/metrics")).Groups[1].Value);
    }

    /// <summary>Polls <paramref name="nodes"/> until none has a stream open, up to <paramref name="wait"/>; the streams still open then.</summary>
    public static async Task<int> StreamsLeftOpenAsync(TimeSpan wait, params AppProcess[] nodes)
    {
        var waited = System.Diagnostics.Stopwatch.StartNew();
        while (true)
        {
            var open = 0;
            foreach (var node in nodes) open += await node.OpenStreamsAsync();
            if (open == 0 || waited.Elapsed >= wait) return open;
            await Task.Delay(100);
        }
    }

    [GeneratedRegex(@"(?m)^ams_events_streams_open (\d+)$")]
    private static partial Regex OpenStreams();
}
