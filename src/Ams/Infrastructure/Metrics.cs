using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Globalization;
using System.Net;
using System.Text;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;

namespace Ams.Infrastructure;

/// <summary>
/// AMS's own instruments (meter <c>Ams</c>), named by OpenTelemetry's conventions. Slices record
/// into them; <see cref="MetricsExposition"/> serves them with ASP.NET Core's, Kestrel's and the
/// runtime's built-in meters at <c>/metrics</c>.
/// </summary>
public static class AmsMetrics
{
    public const string MeterName = "Ams";
    public static readonly Meter Meter = new(MeterName, BuildInfo.Version);

    public static readonly Counter<long> MessagesSent = Meter.CreateCounter<long>("ams.messages.sent", "{message}", "Messages committed (each one sent by a user).");
    public static readonly Histogram<int> GroupCommitBatch = Meter.CreateHistogram<int>("ams.send.batch.size", "{message}",
        "Sends written by one group-commit transaction.", advice: new InstrumentAdvice<int> { HistogramBucketBoundaries = [1, 2, 4, 8, 16, 32, 64] });
    public static readonly Counter<long> EventsDelivered = Meter.CreateCounter<long>("ams.events.delivered", "{event}", "Live events handed to this node's open streams.");
    public static readonly Histogram<int> ReplaySize = Meter.CreateHistogram<int>("ams.events.replay.size", "{event}",
        "Events one resuming stream replayed from the database.", advice: new InstrumentAdvice<int> { HistogramBucketBoundaries = [0, 1, 10, 100, 1000, 10000] });
    public static readonly Counter<long> ConflictRetries = Meter.CreateCounter<long>("ams.db.conflict_retries", "{retry}",
        "Transactions run again because the database refused a conflicting commit (Galera certification, deadlock); operation: send (a group-commit batch) or request.");
    public static readonly Counter<long> Throttled = Meter.CreateCounter<long>("ams.requests.throttled", "{request}", "Requests refused with 429 by a limit.");
    public static readonly Counter<long> PasswordChecksRefused = Meter.CreateCounter<long>("ams.passwords.refused", "{request}",
        "Password hashes and checks refused with 503 because every hashing slot stayed busy for the queue time.");
}

/// <summary>The version and commit this binary was built from (<c>-p:AmsCommit=…</c>, else <c>git rev-parse HEAD</c> at build, else "unknown").</summary>
public static class BuildInfo
{
    public static string Version { get; } = ReadVersion();
    public static string Commit { get; } = typeof(BuildInfo).Assembly.GetCustomAttributes(typeof(System.Reflection.AssemblyMetadataAttribute), false)
        .OfType<System.Reflection.AssemblyMetadataAttribute>().FirstOrDefault(a => a.Key == "AmsCommit")?.Value is { Length: > 0 } c ? c : "unknown";

    static string ReadVersion()
    {
        var informational = typeof(BuildInfo).Assembly.GetCustomAttributes(typeof(System.Reflection.AssemblyInformationalVersionAttribute), false)
            .OfType<System.Reflection.AssemblyInformationalVersionAttribute>().FirstOrDefault()?.InformationalVersion ?? "0.0.0";
        var plus = informational.IndexOf('+');
        return plus < 0 ? informational : informational[..plus];
    }
}

/// <summary>
/// Prometheus text exposition (format 0.0.4) of the meters AMS listens to, aggregated by a
/// <see cref="MeterListener"/>: written here rather than by a package so the AOT binary stays
/// warning-free. OpenTelemetry names become Prometheus names as its exporter does them
/// (dots to underscores, the unit as a suffix, <c>_total</c> on counters).
/// </summary>
public sealed class MetricsExposition : IDisposable
{
    public static readonly string[] Meters =
    [
        AmsMetrics.MeterName, "Microsoft.AspNetCore.Hosting", "Microsoft.AspNetCore.Server.Kestrel", "Microsoft.AspNetCore.Routing",
        "Microsoft.AspNetCore.Diagnostics", "System.Runtime", "System.Net.Http",
    ];

    static readonly double[] SecondsBuckets = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10];
    static readonly double[] DefaultBuckets = [0, 5, 10, 25, 50, 75, 100, 250, 500, 750, 1000, 2500, 5000, 7500, 10000];

    readonly MeterListener listener = new();
    readonly ConcurrentDictionary<Instrument, Series> series = new();

    public MetricsExposition(IMeterFactory meters)
    {
        listener.InstrumentPublished = (instrument, l) =>
        {
            // This host's meters only (another host in the same process, as in tests, has its own factory).
            if (!Meters.Contains(instrument.Meter.Name) || instrument.Meter.Scope is { } scope && !ReferenceEquals(scope, meters)) return;
            series[instrument] = new Series(instrument, BoundariesOf(instrument));
            l.EnableMeasurementEvents(instrument);
        };
        listener.MeasurementsCompleted = (instrument, _) => series.TryRemove(instrument, out Series? _);
        listener.SetMeasurementEventCallback<long>((i, v, tags, _) => Record(i, v, tags));
        listener.SetMeasurementEventCallback<int>((i, v, tags, _) => Record(i, v, tags));
        listener.SetMeasurementEventCallback<short>((i, v, tags, _) => Record(i, v, tags));
        listener.SetMeasurementEventCallback<byte>((i, v, tags, _) => Record(i, v, tags));
        listener.SetMeasurementEventCallback<double>((i, v, tags, _) => Record(i, v, tags));
        listener.SetMeasurementEventCallback<float>((i, v, tags, _) => Record(i, v, tags));
        listener.SetMeasurementEventCallback<decimal>((i, v, tags, _) => Record(i, (double)v, tags));
        listener.Start();
        // AMS's counters are served at 0 from the start rather than missing until their first
        // increment, so that a rate or an alert on one has a series to read (an operator's
        // complaint about the conflict retries). The throttled routes are open-ended: left out.
        AmsMetrics.MessagesSent.Add(0);
        AmsMetrics.EventsDelivered.Add(0);
        AmsMetrics.PasswordChecksRefused.Add(0);
        foreach (var operation in (string[])["send", "request"])
            AmsMetrics.ConflictRetries.Add(0, new KeyValuePair<string, object?>("operation", operation));
    }

    // Formatting a measurement's tags (a list, a sort, then a name and an escape per tag) took ~6 % of
    // a node's CPU in the send profile: ASP.NET's request duration and routing metrics record on
    // every request. The same few tag sets come again and again, so each one's text is kept, by an
    // order-blind hash and checked tag by tag. A bound keeps a flood of distinct values out.
    sealed record CachedLabels(KeyValuePair<string, object?>[] Tags, string Text);
    const int MaxCachedLabels = 4096;
    readonly ConcurrentDictionary<int, CachedLabels> labelCache = new();
    int cachedLabels;

    void Record(Instrument instrument, double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        if (series.TryGetValue(instrument, out var s)) s.Record(value, CachedLabelsOf(tags));
    }

    string CachedLabelsOf(ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        if (tags.Length == 0) return "";
        var hash = 0;
        foreach (var (key, value) in tags) hash += HashCode.Combine(key, value);
        if (labelCache.TryGetValue(hash, out var cached) && SameTags(cached.Tags, tags)) return cached.Text;
        var text = Labels(tags);
        // A hash two tag sets share keeps the first; the second is formatted each time. A place is
        // taken before the entry is added, so that measurements racing at the bound cannot pass it.
        if (cached is null && Volatile.Read(ref cachedLabels) < MaxCachedLabels
            && (Interlocked.Increment(ref cachedLabels) > MaxCachedLabels || !labelCache.TryAdd(hash, new CachedLabels(tags.ToArray(), text))))
            Interlocked.Decrement(ref cachedLabels);
        return text;
    }

    internal int CachedLabelSets => labelCache.Count;

    internal static bool SameTags(KeyValuePair<string, object?>[] known, ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        if (known.Length != tags.Length) return false;
        foreach (var (key, value) in known)
        {
            var found = false;
            foreach (var tag in tags)
                if (string.Equals(tag.Key, key, StringComparison.Ordinal) && Equals(tag.Value, value))
                {
                    found = true;
                    break;
                }
            if (!found) return false;
        }
        return true;
    }

    static double[] BoundariesOf(Instrument instrument) => instrument switch
    {
        Histogram<int> { Advice.HistogramBucketBoundaries: { } b } => b.Select(x => (double)x).ToArray(),
        Histogram<long> { Advice.HistogramBucketBoundaries: { } b } => b.Select(x => (double)x).ToArray(),
        Histogram<double> { Advice.HistogramBucketBoundaries: { } b } => b.ToArray(),
        _ when instrument.Unit == "s" => SecondsBuckets,
        _ => DefaultBuckets,
    };

    static string Labels(ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        if (tags.Length == 0) return "";
        var pairs = new List<KeyValuePair<string, object?>>(tags.Length);
        foreach (var tag in tags) pairs.Add(tag);
        pairs.Sort((a, b) => string.CompareOrdinal(a.Key, b.Key));
        var text = new StringBuilder();
        foreach (var (key, value) in pairs)
        {
            if (text.Length > 0) text.Append(',');
            text.Append(Name(key)).Append("=\"").Append(Escape(Convert.ToString(value, CultureInfo.InvariantCulture) ?? "")).Append('"');
        }
        return text.ToString();
    }

    static string Escape(string value) => value.Replace("\\", "\\\\").Replace("\"", "\\\"").Replace("\n", "\\n");

    /// <summary>A metric or label name: [a-zA-Z_:][a-zA-Z0-9_:]*, everything else an underscore.</summary>
    static string Name(string name)
    {
        var chars = name.Select(c => char.IsAsciiLetterOrDigit(c) || c is '_' or ':' ? c : '_').ToArray();
        if (chars.Length > 0 && char.IsAsciiDigit(chars[0])) return "_" + new string(chars);
        return new string(chars);
    }

    static string UnitSuffix(string? unit) => unit switch
    {
        null or "" or "1" => "",
        "s" => "_seconds",
        "ms" => "_milliseconds",
        "By" => "_bytes",
        _ when unit.StartsWith('{') => "",
        _ => "_" + Name(unit),
    };

    /// <summary>The exposition of every series now; observable instruments are read at this moment.</summary>
    public string Scrape()
    {
        foreach (var s in series.Values) s.BeginObservation();
        listener.RecordObservableInstruments();
        var text = new StringBuilder();
        foreach (var s in series.Values.OrderBy(s => s.Instrument.Name, StringComparer.Ordinal)) s.Write(text);
        return text.ToString();
    }

    public void Dispose() => listener.Dispose();

    sealed class Series(Instrument instrument, double[] boundaries)
    {
        enum Kind { Sum, Last, Histogram }

        public Instrument Instrument { get; } = instrument;
        readonly Kind kind = instrument switch
        {
            Counter<long> or Counter<int> or Counter<double> or Counter<float> or Counter<short> or Counter<byte> or Counter<decimal>
                or UpDownCounter<long> or UpDownCounter<int> or UpDownCounter<double> or UpDownCounter<float> or UpDownCounter<short>
                or UpDownCounter<byte> or UpDownCounter<decimal> => Kind.Sum,
            _ when instrument.GetType().Name.StartsWith("Histogram", StringComparison.Ordinal) => Kind.Histogram,
            _ => Kind.Last,   // observable instruments report their current value; Gauge<T> its latest
        };
        readonly bool monotonic = instrument.GetType().Name.StartsWith("Counter", StringComparison.Ordinal)
                                  || instrument.GetType().Name.StartsWith("ObservableCounter", StringComparison.Ordinal);
        readonly Dictionary<string, double[]> values = new(StringComparer.Ordinal);   // Sum/Last: [value]; Histogram: buckets…, sum, count

        public void BeginObservation()
        {
            if (!Instrument.IsObservable) return;
            lock (values) values.Clear();   // series an observable no longer reports disappear
        }

        public void Record(double value, string labels)
        {
            lock (values)
            {
                if (!values.TryGetValue(labels, out var v))
                    values[labels] = v = new double[kind == Kind.Histogram ? boundaries.Length + 3 : 1];
                switch (kind)
                {
                    case Kind.Sum: v[0] += value; break;
                    case Kind.Last: v[0] = value; break;
                    default:
                        var bucket = 0;
                        while (bucket < boundaries.Length && value > boundaries[bucket]) bucket++;
                        v[bucket]++;
                        v[^2] += value;
                        v[^1]++;
                        break;
                }
            }
        }

        public void Write(StringBuilder text)
        {
            var name = Name(Instrument.Name) + UnitSuffix(Instrument.Unit);
            if (kind == Kind.Histogram && name.EndsWith("_count", StringComparison.Ordinal)) name += "_value";
            var type = kind == Kind.Histogram ? "histogram" : monotonic ? "counter" : "gauge";
            if (type == "counter") name += "_total";
            lock (values)
            {
                if (values.Count == 0) return;
                if (Instrument.Description is { Length: > 0 } help) text.Append("# HELP ").Append(name).Append(' ').Append(help.Replace("\\", "\\\\").Replace("\n", "\\n")).Append('\n');
                text.Append("# TYPE ").Append(name).Append(' ').Append(type).Append('\n');
                foreach (var (labels, v) in values.OrderBy(p => p.Key, StringComparer.Ordinal))
                {
                    if (kind != Kind.Histogram)
                    {
                        Line(text, name, labels, v[0]);
                        continue;
                    }
                    double cumulative = 0;
                    for (var i = 0; i <= boundaries.Length; i++)
                    {
                        cumulative += v[i];
                        var le = i < boundaries.Length ? Number(boundaries[i]) : "+Inf";
                        Line(text, name + "_bucket", labels.Length == 0 ? $"le=\"{le}\"" : $"{labels},le=\"{le}\"", cumulative);
                    }
                    Line(text, name + "_sum", labels, v[^2]);
                    Line(text, name + "_count", labels, v[^1]);
                }
            }
        }

        static void Line(StringBuilder text, string name, string labels, double value)
        {
            text.Append(name);
            if (labels.Length > 0) text.Append('{').Append(labels).Append('}');
            text.Append(' ').Append(Number(value)).Append('\n');
        }

        static string Number(double value) => double.IsPositiveInfinity(value) ? "+Inf" : double.IsNegativeInfinity(value) ? "-Inf"
            : double.IsNaN(value) ? "NaN" : value.ToString("R", CultureInfo.InvariantCulture);
    }
}

/// <summary>
/// <c>GET /metrics</c> for the addresses in <c>Metrics:AllowFrom</c> (CIDRs or addresses; default
/// loopback only); everyone else gets the 404 of an unknown route.
/// </summary>
public static class MetricsEndpoint
{
    public const string Path = "/metrics";

    public static IHostApplicationBuilder AddMetricsExposition(this IHostApplicationBuilder builder)
    {
        var allowed = ClientAddress.ParseNetworks(builder.Configuration["Metrics:AllowFrom"] ?? "127.0.0.0/8,::1/128", "Metrics:AllowFrom");
        builder.Services.AddSingleton(new MetricsAccess(allowed));
        builder.Services.AddSingleton<MetricsExposition>();
        return builder;
    }

    public sealed record MetricsAccess(IReadOnlyList<IPNetwork> AllowFrom);

    /// <summary>
    /// Optional push of the same meters over OTLP, by OpenTelemetry's own exporter, when
    /// <c>OTEL_EXPORTER_OTLP_ENDPOINT</c> (or <c>OTEL_EXPORTER_OTLP_METRICS_ENDPOINT</c>) is set. The
    /// exporter's standard variables apply as OpenTelemetry documents them (_PROTOCOL, _HEADERS,
    /// <c>OTEL_METRIC_EXPORT_INTERVAL</c>); <c>OTEL_SERVICE_NAME</c> defaults to "ams".
    /// </summary>
    public static IHostApplicationBuilder AddOtlpExport(this IHostApplicationBuilder builder)
    {
        var config = builder.Configuration;
        var endpoints = new[] { "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT" }
            .Where(key => config[key] is { Length: > 0 }).ToList();
        if (endpoints.Count == 0) return builder;
        foreach (var key in endpoints)
            if (!Uri.TryCreate(config[key], UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https"))
                throw new ConfigurationException($"{key}: '{config[key]}' is not an http:// or https:// URL such as http://collector:4318.");
        builder.Services.AddOpenTelemetry()
            .ConfigureResource(resource => resource.AddService(config["OTEL_SERVICE_NAME"] is { Length: > 0 } name ? name : "ams", serviceVersion: BuildInfo.Version))
            .WithMetrics(metrics => metrics.AddMeter(MetricsExposition.Meters).AddOtlpExporter());
        return builder;
    }

    /// <summary>Starts listening at once (so counts begin with the first request) and answers <c>/metrics</c>.</summary>
    public static IApplicationBuilder UseMetricsExposition(this IApplicationBuilder app)
    {
        var exposition = app.ApplicationServices.GetRequiredService<MetricsExposition>();
        var access = app.ApplicationServices.GetRequiredService<MetricsAccess>();
        return app.Use((http, next) =>
        {
            if (!http.Request.Path.Equals(Path, StringComparison.OrdinalIgnoreCase) || !HttpMethods.IsGet(http.Request.Method))
            {
                // Counted when the answer starts, not after `next`: awaiting it would hold a state
                // machine for the request's lifetime (an event stream runs for hours).
                http.Response.OnStarting(static state =>
                {
                    var http = (HttpContext)state;
                    if (http.Response.StatusCode == StatusCodes.Status429TooManyRequests)
                        AmsMetrics.Throttled.Add(1, new KeyValuePair<string, object?>("http.route", (http.GetEndpoint() as RouteEndpoint)?.RoutePattern.RawText ?? "unknown"));
                    return Task.CompletedTask;
                }, http);
                return next(http);
            }
            return ScrapeAsync(http, access, exposition);
        });
    }

    static async Task ScrapeAsync(HttpContext http, MetricsAccess access, MetricsExposition exposition)
    {
        if (http.Connection.RemoteIpAddress is not { } address || !ClientAddress.IsIn(address, access.AllowFrom))
        {
            http.Response.StatusCode = StatusCodes.Status404NotFound;   // the status-code pages write the usual problem
            return;
        }
        http.Response.ContentType = "text/plain; version=0.0.4; charset=utf-8";
        http.Response.Headers.CacheControl = "no-store";
        await http.Response.WriteAsync(exposition.Scrape(), http.RequestAborted);
    }
}
