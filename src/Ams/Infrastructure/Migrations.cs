using System.Reflection;
using Dapper;
using MySqlConnector;

namespace Ams.Infrastructure;

/// <summary>
/// Applies the embedded <c>Migrations/*.sql</c> files in name order, each exactly once.
/// Nodes that start together take turns through a lock row (see <see cref="ClaimAsync"/>), so
/// the second node waits and then finds everything applied.
/// </summary>
public static class Migrations
{
    static readonly TimeSpan WaitLimit = TimeSpan.FromSeconds(120);
    // The holder renews its claim well within its lifetime; a claim left by a node that died
    // mid-migration lapses after the lifetime and the next node takes over.
    static readonly TimeSpan ClaimLifetime = TimeSpan.FromSeconds(30);
    static readonly TimeSpan RenewEvery = TimeSpan.FromSeconds(5);

    public static async Task ApplyAsync(MariaDb db, ILogger logger, CancellationToken ct)
    {
        await using var connection = await OpenWithRetryAsync(db, logger, ct);
        var holder = $"{Guid.NewGuid():N} {Environment.MachineName}";
        holder = holder[..Math.Min(holder.Length, 64)];
        await ClaimAsync(connection, holder, logger, ct);
        using var stopRenewing = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var renewing = RenewAsync(db, holder, logger, stopRenewing.Token);
        try
        {
            await connection.ExecuteAsync("""
                CREATE TABLE IF NOT EXISTS schema_migrations (
                    version VARCHAR(128) NOT NULL PRIMARY KEY,
                    applied_at DATETIME(3) NOT NULL DEFAULT UTC_TIMESTAMP(3)
                ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci
                """);
            var applied = (await connection.QueryAsync<string>("SELECT version FROM schema_migrations")).ToHashSet();
            foreach (var (version, sql) in Embedded())
            {
                if (applied.Contains(version)) continue;
                logger.LogInformation("Applying schema migration {Version}", version);
                await connection.ExecuteAsync(sql);
                await connection.ExecuteAsync("INSERT INTO schema_migrations (version) VALUES (@version)", new { version });
            }
        }
        finally
        {
            await stopRenewing.CancelAsync();
            await renewing;
            await OnConflictRetryAsync(() => connection.ExecuteAsync(
                "UPDATE schema_lock SET holder = '', expires_at = UTC_TIMESTAMP(3) WHERE id = 1 AND holder = @holder", new { holder }));
        }
    }

    /// <summary>
    /// Waits for the migration lock and takes it. It is a row, not GET_LOCK: a named lock is local
    /// to one Galera node, so nodes on different Galera nodes would both hold it. Taking the row is
    /// an UPDATE, which plain MariaDB serialises with its row lock and Galera certifies across the
    /// cluster (the loser's commit fails with a deadlock error and tries again).
    /// </summary>
    static async Task ClaimAsync(MySqlConnection connection, string holder, ILogger logger, CancellationToken ct)
    {
        await connection.ExecuteAsync("""
            CREATE TABLE IF NOT EXISTS schema_lock (
                id TINYINT UNSIGNED NOT NULL PRIMARY KEY,
                holder VARCHAR(64) NOT NULL,
                expires_at DATETIME(3) NOT NULL
            ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci
            """);
        await OnConflictRetryAsync(() => connection.ExecuteAsync(
            "INSERT IGNORE INTO schema_lock (id, holder, expires_at) VALUES (1, '', UTC_TIMESTAMP(3))"));
        var waited = System.Diagnostics.Stopwatch.StartNew();
        var told = false;
        while (true)
        {
            var claimed = await OnConflictRetryAsync(() => connection.ExecuteAsync("""
                UPDATE schema_lock SET holder = @holder, expires_at = UTC_TIMESTAMP(3) + INTERVAL @lifetime SECOND
                WHERE id = 1 AND (holder = '' OR expires_at < UTC_TIMESTAMP(3))
                """, new { holder, lifetime = (int)ClaimLifetime.TotalSeconds }));
            if (claimed == 1) return;
            if (waited.Elapsed > WaitLimit)
                throw new InvalidOperationException("Timed out waiting for another node to finish the schema migrations.");
            if (!told)
            {
                logger.LogInformation("Waiting for another node to finish the schema migrations");
                told = true;
            }
            await Task.Delay(TimeSpan.FromMilliseconds(250), ct);
        }
    }

    static async Task RenewAsync(MariaDb db, string holder, ILogger logger, CancellationToken ct)
    {
        try
        {
            while (true)
            {
                await Task.Delay(RenewEvery, ct);
                await using var connection = await db.OpenConnectionAsync(ct);
                await OnConflictRetryAsync(() => connection.ExecuteAsync(
                    "UPDATE schema_lock SET expires_at = UTC_TIMESTAMP(3) + INTERVAL @lifetime SECOND WHERE id = 1 AND holder = @holder",
                    new { holder, lifetime = (int)ClaimLifetime.TotalSeconds }));
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
        }
        catch (MySqlException e)
        {
            // The migrations go on; if they outlast the claim, another node may start them too and
            // fail on the first statement already applied, then find everything done on its restart.
            logger.LogWarning("Could not renew the schema migration lock ({Message})", e.Message);
        }
    }

    /// <summary>Runs a single autocommitted statement again when Galera's certification refused it.</summary>
    static async Task<int> OnConflictRetryAsync(Func<Task<int>> statement)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await statement();
            }
            catch (MySqlException e) when (e.ErrorCode == MySqlErrorCode.LockDeadlock && attempt < 10)
            {
                await Task.Delay(Random.Shared.Next(10, 50) * attempt);
            }
        }
    }

    static IEnumerable<(string Version, string Sql)> Embedded()
    {
        var assembly = typeof(Migrations).Assembly;
        const string prefix = "Ams.Migrations.";
        foreach (var name in assembly.GetManifestResourceNames().Where(n => n.StartsWith(prefix)).Order(StringComparer.Ordinal))
        {
            using var reader = new StreamReader(assembly.GetManifestResourceStream(name)!);
            yield return (name[prefix.Length..^".sql".Length], reader.ReadToEnd());
        }
    }

    // In compose the app may come up before MariaDB accepts connections. A server that answers but
    // refuses the account or the database will not mend by waiting: that is said at once.
    // One line when the wait begins or its reason changes, and one when it ends (an outside check
    // counted a line a second).
    static async Task<MySqlConnection> OpenWithRetryAsync(MariaDb db, ILogger logger, CancellationToken ct)
    {
        string? said = null;
        var waited = System.Diagnostics.Stopwatch.StartNew();
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                var connection = await db.OpenConnectionAsync(ct);
                if (said is not null) logger.LogInformation("MariaDB answers after {Seconds:0.0} s", waited.Elapsed.TotalSeconds);
                return connection;
            }
            catch (MySqlException e) when (attempt < 30
                && e.ErrorCode is not (MySqlErrorCode.AccessDenied or MySqlErrorCode.DatabaseAccessDenied or MySqlErrorCode.UnknownDatabase))
            {
                if (e.Message != said) logger.LogWarning("MariaDB is not reachable yet ({Message}); retrying, 30 tries a second apart", e.Message);
                said = e.Message;
                await Task.Delay(TimeSpan.FromSeconds(1), ct);
            }
        }
    }
}
