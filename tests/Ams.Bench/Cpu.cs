namespace Ams.Bench;

/// <summary>
/// CPU time spent during a scenario by each kind of process this harness started (AMS nodes,
/// mariadbd, redis-server, haproxy…, summed by name) and by the harness itself, and how busy the
/// whole machine was (from /proc): tells a run that is short of CPU from one that waits on
/// something, and shows where an operation's cost goes.
/// </summary>
sealed class CpuMeter
{
    Dictionary<int, (string Name, long Ticks)> started = [];
    (long Busy, long All) machineStarted;

    public void Start()
    {
        started = Processes();
        machineStarted = Machine();
    }

    /// <summary>Milliseconds of CPU per operation by process name, and the machine's busy share.</summary>
    public (string Figure, string Value) Stop(long operations)
    {
        var spent = Processes()
            .GroupBy(p => p.Value.Name, p => p.Value.Ticks - (started.TryGetValue(p.Key, out var s) ? s.Ticks : 0))
            .Select(g => (Name: g.Key, Ms: g.Sum() * 1000.0 / TicksPerSecond / Math.Max(1, operations)))
            .Where(g => g.Ms > 0)
            .OrderByDescending(g => g.Ms);
        var (busy, all) = Machine();
        var share = 100.0 * (busy - machineStarted.Busy) / Math.Max(1, all - machineStarted.All);
        return ("CPU ms per operation; machine busy", $"{string.Join(", ", spent.Select(g => $"{g.Name} {g.Ms:F3}"))}; {share:F0} %");
    }

    const double TicksPerSecond = 100;   // USER_HZ on Linux

    /// <summary>This process ("harness") and everything it started, directly or through a shell.</summary>
    static Dictionary<int, (string Name, long Ticks)> Processes()
    {
        var all = new Dictionary<int, (int Parent, string Name, long Ticks)>();
        foreach (var directory in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(directory), out var pid)) continue;
            try
            {
                // The name is in parentheses and may hold spaces; ppid is field 4, utime and stime 14 and 15.
                var stat = File.ReadAllText(Path.Combine(directory, "stat"));
                var name = stat[(stat.IndexOf('(') + 1)..stat.LastIndexOf(')')];
                var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
                all[pid] = (int.Parse(fields[1]), name, long.Parse(fields[11]) + long.Parse(fields[12]));
            }
            catch (IOException) { }   // gone meanwhile
        }
        var self = Environment.ProcessId;
        bool Ours(int pid)
        {
            for (var hops = 0; hops < 8 && all.TryGetValue(pid, out var p); hops++, pid = p.Parent)
                if (pid == self) return true;
            return false;
        }
        return all.Where(p => Ours(p.Key))
            .ToDictionary(p => p.Key, p => (p.Key == self ? "harness" : p.Value.Name, p.Value.Ticks));
    }

    /// <summary>All CPUs' busy and total ticks; steal (time the hypervisor gave elsewhere) counts as busy.</summary>
    static (long Busy, long All) Machine()
    {
        var fields = File.ReadLines("/proc/stat").First().Split(' ', StringSplitOptions.RemoveEmptyEntries).Skip(1).Select(long.Parse).ToArray();
        var idle = fields[3] + fields[4];   // idle + iowait
        var all = fields.Take(8).Sum();
        return (all - idle, all);
    }
}
