using Ams.Infrastructure;

namespace Ams.Features.Health;

public sealed class Services : ISliceServices
{
    public static void Add(IHostApplicationBuilder builder) => builder.Services.AddSingleton<CheckStates>();
}

/// <summary>
/// Which parts failed their last check on this node, so a load balancer polling every second
/// during an outage writes one line when a part fails and one when it answers again, not one a poll.
/// </summary>
public sealed class CheckStates
{
    readonly Lock gate = new();
    readonly Dictionary<string, bool> failing = new(StringComparer.Ordinal);

    /// <summary>Whether this check changed what <paramref name="part"/> last did (never checked counts as answering).</summary>
    public bool Changed(string part, bool failed)
    {
        lock (gate)
        {
            var before = failing.GetValueOrDefault(part);
            failing[part] = failed;
            return before != failed;
        }
    }
}
