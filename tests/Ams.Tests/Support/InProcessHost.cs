using System.Runtime.CompilerServices;
using Ams.Infrastructure;

namespace Ams.Tests.Support;

static class InProcessHost
{
    /// <summary>Program runs inside the test process: a refused start reaches the test as its exception, not as an exit code.</summary>
    [ModuleInitializer]
    internal static void PropagateStartupFailures() => StartupFailure.Propagate = true;
}
