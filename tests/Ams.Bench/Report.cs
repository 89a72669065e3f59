using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;

namespace Ams.Bench;

/// <summary>docs/benchmarks.md: machine, versions, tables, budgets, and an SVG of the latency percentiles.</summary>
sealed class Report(bool smoke)
{
    static readonly double[] Percentiles = [50, 90, 99, 99.9, 100];
    readonly List<Result> results = [];
    List<Footprint> footprint = [];
    public List<string> Failures { get; } = [];
    readonly List<string> notes = [];

    public void Note(string note) => notes.Add(note);

    public void Footprint(List<Footprint> measured) => footprint = measured;

    string history = "";

    /// <summary>docs/benchmarks-history.md, carried into the report so the before/after figures sit with the latest run.</summary>
    public void History(string markdown) => history = markdown;

    public void Add(Result result)
    {
        results.Add(result);
        Failures.AddRange(result.Failures.Select(f => $"{result.Name}: {f}"));
    }

    static double Ms(long ticks) => ticks * 1000.0 / Stopwatch.Frequency;
    static string F(double value) => value.ToString(value < 10 ? "F2" : "F1", CultureInfo.InvariantCulture);

    public void Write(string path)
    {
        var md = new StringBuilder();
        md.AppendLine("# AMS benchmarks").AppendLine();
        md.AppendLine(smoke
            ? "_Smoke run (a few seconds per scenario, as in `just test`): figures are not meaningful, only that the harness works._"
            : "Produced by `just bench` (`tests/Ams.Bench`). Everything on loopback on one machine: MariaDB, Redis, two AMS nodes (the Native-AOT binary), and the load from the harness process.");
        md.AppendLine();
        md.AppendLine($"- Machine: {Environment.ProcessorCount} cores, {GC.GetGCMemoryInfo().TotalAvailableMemoryBytes / 1073741824.0:F0} GiB, {RuntimeInformation.OSDescription}");
        md.AppendLine($"- .NET {Environment.Version}; MariaDB and Redis from Debian; run {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC");
        md.AppendLine("- Command: `just bench` (full) or `dotnet run --project tests/Ams.Bench -c Release -- --smoke`").AppendLine();

        md.AppendLine("## Footprint").AppendLine();
        md.AppendLine("| build | size | start to first 200 (median of 3) | idle RSS |").AppendLine("|---|---|---|---|");
        foreach (var f in footprint)
            md.AppendLine($"| {f.Build} | {f.SizeBytes / 1048576.0:F1} MB | {f.FirstOk.TotalMilliseconds:F0} ms | {f.IdleRssBytes / 1048576.0:F0} MB |");
        md.AppendLine();

        md.AppendLine("## Scenarios").AppendLine();
        md.AppendLine("| scenario | what | figures | p50 | p90 | p99 | p99.9 | max |").AppendLine("|---|---|---|---|---|---|---|---|");
        foreach (var r in results)
        {
            var figures = string.Join("; ", r.Figures.Select(f => $"{f.Figure} {f.Value}"));
            var cells = r.Latency is { TotalCount: > 0 } h
                ? string.Join(" | ", Percentiles.Select(p => F(Ms(h.GetValueAtPercentile(p))) + " ms"))
                : "– | – | – | – | –";
            md.AppendLine($"| {r.Name} | {r.What} | {figures} | {cells} |");
        }
        md.AppendLine();
        DeliveryTable(md);
        md.AppendLine("![Latency percentiles per scenario](benchmarks.svg)").AppendLine();
        md.AppendLine("Changes to hot paths and their before/after figures: [benchmarks-history.md](benchmarks-history.md).").AppendLine();

        md.AppendLine("## Budgets").AppendLine();
        foreach (var line in Budgets()) md.AppendLine($"- {line}");
        if (Failures.Count > 0)
        {
            md.AppendLine().AppendLine("## Failures").AppendLine();
            foreach (var failure in Failures) md.AppendLine($"- {failure}");
        }
        if (history.Length > 0)
        {
            // One level down, under a heading of its own; the file stays the place to edit.
            md.AppendLine().AppendLine("## Before and after (from [benchmarks-history.md](benchmarks-history.md))").AppendLine();
            foreach (var line in history.Split('\n').Skip(1))
                md.AppendLine(line.StartsWith('#') ? "#" + line : line);
        }
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, md.ToString().TrimEnd() + "\n");
        File.WriteAllText(Path.ChangeExtension(path, ".svg"), Svg());
    }

    Result? Ams(int rate) => results.FirstOrDefault(r => r.TargetRate == rate && r.Name.StartsWith("Delivery", StringComparison.Ordinal));
    Result? Peer(int rate) => results.FirstOrDefault(r => r.TargetRate == rate && r.Name.StartsWith("Prosody", StringComparison.Ordinal));
    Result? Floor(int rate) => results.FirstOrDefault(r => r.TargetRate == rate && r.Name.StartsWith("Floor", StringComparison.Ordinal));
    Result? HttpFloor(int rate) => results.FirstOrDefault(r => r.TargetRate == rate && r.Name.StartsWith("HTTP floor", StringComparison.Ordinal));

    /// <summary>The same job at the same fixed rates, AMS (send on node 1, SSE on node 2) next to Prosody (one server).</summary>
    void DeliveryTable(StringBuilder md)
    {
        var rates = results.Where(r => r.TargetRate > 0).Select(r => r.TargetRate).Distinct().Order().ToList();
        if (rates.Count == 0) return;
        md.AppendLine("## Delivery: AMS, Prosody and the floor side by side").AppendLine();
        md.AppendLine("Send → receipt at a fixed rate, every message checked; they run one after the other on the same machine and MariaDB, never at once. " +
            "The floor is no server at all: the harness's own durable INSERT and PUBLISH, received on a second Redis connection. " +
            "The HTTP floor puts the same behind a bare Kestrel POST (201 after both) and an SSE stream fed by the subscription, in the harness's process.").AppendLine();
        md.AppendLine("| rate | AMS p50 | AMS p99 | AMS p99.9 | AMS max | Prosody p50 | Prosody p99 | Prosody p99.9 | Prosody max | floor p50 | floor p99 | HTTP floor p50 | HTTP floor p99 | lost/duplicated (AMS; Prosody) |");
        md.AppendLine("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
        string Cells(Result? r) => r?.Latency is { TotalCount: > 0 } h
            ? string.Join(" | ", new[] { 50, 99, 99.9, 100 }.Select(p => F(Ms(h.GetValueAtPercentile(p))) + " ms"))
            : "– | – | – | –";
        string Loss(Result? r) => r is null ? "–" : $"{r.Lost}/{r.Duplicated}";
        foreach (var rate in rates)
        {
            string Two(Result? r) => r?.Latency is { TotalCount: > 0 } f ? $"{F(Ms(f.GetValueAtPercentile(50)))} ms | {F(Ms(f.GetValueAtPercentile(99)))} ms" : "– | –";
            md.AppendLine($"| {rate.ToString("N0", CultureInfo.InvariantCulture)}/s | {Cells(Ams(rate))} | {Cells(Peer(rate))} | {Two(Floor(rate))} | {Two(HttpFloor(rate))} | {Loss(Ams(rate))}; {Loss(Peer(rate))} |");
        }
        md.AppendLine();
    }

    IEnumerable<string> Budgets()
    {
        string Check(bool ok, string text) => $"{(ok ? "met" : "**not met**")}: {text}";
        var delivery = Ams(1000) ?? results.LastOrDefault(r => r.TargetRate > 0 && r.Name.StartsWith("Delivery", StringComparison.Ordinal));
        if (delivery?.Latency is { TotalCount: > 0 } d)
            yield return Check(Ms(d.GetValueAtPercentile(99)) <= 5 && delivery.Failures.Count == 0,
                $"delivery p99 ≤ 5 ms at 1,000 sends/s across two nodes with zero loss (measured p99 {F(Ms(d.GetValueAtPercentile(99)))} ms at {delivery.Rate:F0}/s" +
                (Floor(delivery.TargetRate)?.Latency is { TotalCount: > 0 } f ? $"; the floor with no server in the path: p99 {F(Ms(f.GetValueAtPercentile(99)))} ms" : "") +
                (HttpFloor(delivery.TargetRate)?.Latency is { TotalCount: > 0 } h ? $"; with bare HTTP and SSE: p99 {F(Ms(h.GetValueAtPercentile(99)))} ms)" : ")"));
        if (Ams(200)?.Latency is { TotalCount: > 0 } ours200 && Peer(200)?.Latency is { TotalCount: > 0 } theirs200)
            yield return Check(ours200.GetValueAtPercentile(99) <= theirs200.GetValueAtPercentile(99),
                $"delivery at 200 sends/s no slower than Prosody at p99 ({F(Ms(ours200.GetValueAtPercentile(99)))} ms vs {F(Ms(theirs200.GetValueAtPercentile(99)))} ms)");
        var floor = results.FirstOrDefault(r => r.Name == "Floor");
        var send = results.FirstOrDefault(r => r.Name == "Send throughput");
        if (floor is not null && send is not null && floor.Rate > 0)
            yield return Check(send.Rate >= floor.Rate / 2, $"send throughput ≥ 50 % of the floor (measured {send.Rate / floor.Rate * 100:F0} %: {send.Rate:F0}/s vs {floor.Rate:F0}/s)");
        var connections = results.FirstOrDefault(r => r.Name == "Connections");
        if (connections is not null)
            yield return Check(connections.ResidentBytes <= 250L * 1048576 && connections.Failures.Count == 0,
                $"10,000 idle SSE connections in ≤ 250 MB RSS on one node ({connections.What}: {string.Join(", ", connections.Figures.Select(f => $"{f.Figure} {f.Value}"))})");
        foreach (var (name, what, unit) in new[] { ("Connections 50k", "SSE connections", "connection"), ("Streams 50k", "SSE streams over HTTP/2 (100 to a connection)", "stream") })
        {
            if (results.FirstOrDefault(r => r.Name == name) is not { Steps.Count: > 1 } many) continue;
            // Flat: the cost per connection at the last step within 10 % of the first step's.
            double Kb(int i) => (many.Steps[i].ResidentBytes - many.ResidentBefore) / (double)many.Steps[i].Connections / 1024;
            var (first, last) = (Kb(0), Kb(many.Steps.Count - 1));
            var text = $"50,000 {what} on one node with memory per {unit} flat: " +
                string.Join(", ", many.Steps.Select((s, i) => $"{s.Connections:N0}: {s.ResidentBytes / 1048576.0:F0} MB ({Kb(i):F1} KB each)")) +
                $"; {many.Figures.FirstOrDefault(f => f.Figure == "deliveries").Value} burst deliveries";
            // Steps stopped short by the open-files limit prove nothing about 50,000.
            yield return many.Steps[^1].Connections < 50_000
                ? $"**not measured** to the end: {text} (the steps stop short of 50,000: the smoke's, or this machine's open-files limit)"
                : Check(last <= first * 1.1 && many.Failures.Count == 0, text);
        }
        if (footprint.FirstOrDefault(f => f.Build == "Native AOT") is { } aot)
        {
            yield return Check(aot.SizeBytes <= 40L * 1048576, $"AOT binary ≤ 40 MB ({aot.SizeBytes / 1048576.0:F1} MB)");
            yield return Check(aot.FirstOk.TotalMilliseconds <= 100, $"first 200 ≤ 100 ms ({aot.FirstOk.TotalMilliseconds:F0} ms)");
            yield return Check(aot.IdleRssBytes <= 60L * 1048576, $"idle RSS ≤ 60 MB ({aot.IdleRssBytes / 1048576.0:F0} MB)");
        }
        var peerThroughput = results.FirstOrDefault(r => r.Name == "Prosody throughput");
        if (send is not null && peerThroughput is not null)
            yield return Check(send.Rate > peerThroughput.Rate, $"ahead of Prosody on throughput ({send.Rate:F0}/s vs {peerThroughput.Rate:F0}/s)");
        foreach (var note in notes) yield return note;
        yield return "Profiles behind these figures, and why the budgets not met are not: [benchmarks-history.md](benchmarks-history.md).";
    }

    // Grouped bars on a log scale: one group per scenario, one bar per percentile.
    string Svg()
    {
        const int width = 760, height = 320, left = 60, bottom = 40, top = 30;
        var withLatency = results.Where(r => r.Latency is { TotalCount: > 0 }).ToList();
        var svg = new StringBuilder();
        svg.AppendLine(CultureInfo.InvariantCulture, $"""<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">""");
        svg.AppendLine("""<rect width="100%" height="100%" fill="#fff"/>""");
        svg.AppendLine("""<text x="60" y="18" font-size="13" font-weight="bold">Latency percentiles (ms, log scale)</text>""");
        double Y(double ms) => top + (height - top - bottom) * (1 - Math.Clamp((Math.Log10(Math.Max(ms, 0.1)) + 1) / 5, 0, 1));   // 0.1 ms … 10 s
        foreach (var tick in new[] { 0.1, 1, 10, 100, 1000, 10000 })
            svg.AppendLine(CultureInfo.InvariantCulture, $"""<line x1="{left}" x2="{width - 10}" y1="{Y(tick):F1}" y2="{Y(tick):F1}" stroke="#ddd"/><text x="{left - 6}" y="{Y(tick) + 4:F1}" text-anchor="end">{tick}</text>""");
        string[] colors = ["#9ecae1", "#6baed6", "#3182bd", "#08519c", "#08306b"];
        var group = withLatency.Count == 0 ? 0 : (width - left - 20) / withLatency.Count;
        for (var i = 0; i < withLatency.Count; i++)
        {
            var h = withLatency[i].Latency!;
            var bar = Math.Max(4, (group - 20) / Percentiles.Length);
            for (var p = 0; p < Percentiles.Length; p++)
            {
                var ms = Ms(h.GetValueAtPercentile(Percentiles[p]));
                var x = left + 10 + i * group + p * bar;
                svg.AppendLine(CultureInfo.InvariantCulture, $"""<rect x="{x}" y="{Y(ms):F1}" width="{bar - 2}" height="{height - bottom - Y(ms):F1}" fill="{colors[p]}"><title>{withLatency[i].Name} p{Percentiles[p]}: {F(ms)} ms</title></rect>""");
            }
            svg.AppendLine(CultureInfo.InvariantCulture, $"""<text x="{left + 10 + i * group}" y="{height - bottom + 16}">{withLatency[i].Name}</text>""");
        }
        for (var p = 0; p < Percentiles.Length; p++)
            svg.AppendLine(CultureInfo.InvariantCulture, $"""<rect x="{left + p * 80}" y="{height - 14}" width="10" height="10" fill="{colors[p]}"/><text x="{left + 14 + p * 80}" y="{height - 5}">{(Percentiles[p] == 100 ? "max" : $"p{Percentiles[p]}")}</text>""");
        svg.AppendLine("</svg>");
        return svg.ToString();
    }
}
