using MySqlConnector;

namespace Ams.Infrastructure;

/// <summary>The loop of a background sweep: every interval until shutdown; an unreachable database is logged and tried again at the next interval.</summary>
public static class Periodic
{
    public static async Task RunAsync(TimeSpan interval, TimeProvider time, ILogger logger, string what, Func<CancellationToken, Task> job, CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(interval, time, stoppingToken);
                await job(stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (e is MySqlException or TimeoutException)
            {
                logger.LogWarning("{What} failed ({Message}); retrying at the next interval", what, e.Message);
            }
        }
    }
}
