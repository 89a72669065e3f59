using System.Diagnostics.Metrics;

namespace Ams.Tests.Support;

/// <summary>
/// The connections MySqlConnector's pools for one database have in use, from its own metrics
/// (every app instance on that database counts): now, at the peak, and how many times one was taken.
/// </summary>
public sealed class PoolUsage : IDisposable
{
    readonly MeterListener listener;
    readonly Lock gate = new();
    int used, peak, takes;

    public PoolUsage(string database)
    {
        listener = new MeterListener
        {
            InstrumentPublished = (instrument, l) =>
            {
                if (instrument.Meter.Name == "MySqlConnector" && instrument.Name == "db.client.connections.usage") l.EnableMeasurementEvents(instrument);
            },
        };
        listener.SetMeasurementEventCallback<int>((_, value, tags, _) =>
        {
            string? pool = null, state = null;
            foreach (var tag in tags)
                if (tag.Key.EndsWith("pool.name", StringComparison.Ordinal)) pool = tag.Value as string;
                else if (tag.Key.EndsWith("state", StringComparison.Ordinal)) state = tag.Value as string;
            if (state != "used" || pool?.Contains(database, StringComparison.Ordinal) != true) return;
            lock (gate)
            {
                peak = Math.Max(peak, used += value);
                if (value > 0) takes += value;
            }
        });
        listener.Start();
    }

    public int Peak { get { lock (gate) return peak; } }

    /// <summary>In use now, counted from when this listener started.</summary>
    public int Used { get { lock (gate) return used; } }

    public int Takes { get { lock (gate) return takes; } }

    /// <summary>The peak counts from now on.</summary>
    public void ResetPeak() { lock (gate) peak = used; }

    public void Dispose() => listener.Dispose();
}
