using Microsoft.Extensions.Logging;

namespace Ams.Tests.Support;

/// <summary>
/// Every test host's warnings and errors, timed, in one file beside the test assembly
/// (<c>app-warnings.log</c>): `dotnet test` shows an app's console only at detailed verbosity, and a
/// test that fails once in many CI runs (a 503 on a healthy Redis) leaves nothing else to read.
/// .ci/run prints its tail when a run fails.
/// </summary>
public sealed class WarningsFile : ILoggerProvider
{
    public static readonly WarningsFile Shared = new(Path.Combine(AppContext.BaseDirectory, "app-warnings.log"));

    readonly StreamWriter writer;
    readonly Lock writing = new();

    WarningsFile(string path) => writer = new StreamWriter(path, append: false) { AutoFlush = true };

    public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

    // Shared by every host of the run, which each dispose their providers: the file stays open.
    public void Dispose() { }

    sealed class Logger(WarningsFile owner, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
        public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Warning;
        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (!IsEnabled(logLevel)) return;
            var line = $"{DateTime.UtcNow:HH:mm:ss.fff} {logLevel} {category}: {formatter(state, exception)}{(exception is null ? "" : " " + exception)}";
            lock (owner.writing) owner.writer.WriteLine(line);
        }
    }
}
