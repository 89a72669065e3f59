using MySqlConnector;

namespace Ams.Infrastructure;

/// <summary>
/// A background job that deletes what nothing reads any more: <see cref="SweepAsync"/> every
/// interval until shutdown, on every node. A failed run is logged and tried again at the next interval.
/// </summary>
public abstract class BackgroundSweep(TimeSpan interval, string name, TimeProvider time, ILogger logger) : BackgroundService
{
    protected TimeProvider Time => time;
    protected ILogger Logger => logger;

    /// <summary>One sweep; how many things it deleted.</summary>
    public abstract Task<long> SweepAsync(CancellationToken ct = default);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        // The first run comes at a random point of the first interval: a node restarted more often
        // than its interval never ran the job at all, and nodes started together ran it together.
        var delay = TimeSpan.FromTicks(Random.Shared.NextInt64(interval.Ticks));
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(delay, time, stoppingToken);
                delay = interval;
                // Said here, once for every sweep: a sweep that deletes is how an operator sees it work.
                if (await SweepAsync(stoppingToken) is var deleted and > 0)
                    logger.LogInformation("{Sweep}: {Count} deleted", name, deleted);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (e is MySqlException or TimeoutException)
            {
                logger.LogWarning("{Sweep} failed ({Message}); retrying at the next interval", name, e.Message);
            }
            catch (Exception e)
            {
                // Any other failure is a fault to fix, but not one to stop the node for: an exception
                // escaping a background service ends the host, with exit code 0.
                logger.LogError(e, "{Sweep} failed; retrying at the next interval", name);
            }
        }
    }

    /// <summary>Users a per-user sweep reads at a time.</summary>
    protected const int UsersPerRound = 500;

    /// <summary>
    /// Sweeps user by user, in id order: <paramref name="round"/> reads up to <see cref="UsersPerRound"/>
    /// users after the id it is given, and <paramref name="sweepUser"/> deletes what one of them no
    /// longer needs. How many things it deleted in all.
    /// </summary>
    protected static async Task<long> PerUserAsync<T>(Func<long, Task<List<T>>> round, Func<T, long> userIdOf, Func<T, Task<long>> sweepUser)
    {
        long deleted = 0, afterUserId = 0;
        while (true)
        {
            var users = await round(afterUserId);
            foreach (var user in users) deleted += await sweepUser(user);
            if (users.Count < UsersPerRound) return deleted;
            afterUserId = userIdOf(users[^1]);
        }
    }

    /// <summary>Runs <paramref name="delete"/>, which deletes at most <paramref name="batch"/> rows, until a run deletes fewer; how many in all.</summary>
    protected static async Task<long> DeleteInBatchesAsync(int batch, Func<Task<int>> delete)
    {
        long total = 0;
        int deleted;
        do total += deleted = await delete();
        while (deleted == batch);
        return total;
    }
}

public static class BackgroundSweepServices
{
    /// <summary>The sweep as itself (tests and tools run it) and as a hosted service.</summary>
    public static IServiceCollection AddSweep<[System.Diagnostics.CodeAnalysis.DynamicallyAccessedMembers(System.Diagnostics.CodeAnalysis.DynamicallyAccessedMemberTypes.PublicConstructors)] T>(this IServiceCollection services) where T : BackgroundSweep =>
        services.AddSingleton<T>().AddHostedService(sp => sp.GetRequiredService<T>());
}
