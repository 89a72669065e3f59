using System.Reflection;
using Dapper;
using MySqlConnector;

namespace Ams.Infrastructure;

/// <summary>
/// Applies the embedded <c>Migrations/*.sql</c> files in name order, each exactly once.
/// A MariaDB named lock serialises nodes that start together, so the second node waits and
/// then finds everything applied.
/// </summary>
public static class Migrations
{
    const string LockName = "ams.schema-migrations";

    public static async Task ApplyAsync(MySqlDataSource db, ILogger logger, CancellationToken ct)
    {
        await using var connection = await OpenWithRetryAsync(db, logger, ct);
        var locked = await connection.ExecuteScalarAsync<long?>("SELECT GET_LOCK(@LockName, 120)", new { LockName });
        if (locked != 1)
            throw new InvalidOperationException("Timed out waiting for another node to finish the schema migrations.");
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
            await connection.ExecuteAsync("SELECT RELEASE_LOCK(@LockName)", new { LockName });
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

    // In compose the app may come up before MariaDB accepts connections.
    static async Task<MySqlConnection> OpenWithRetryAsync(MySqlDataSource db, ILogger logger, CancellationToken ct)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await db.OpenConnectionAsync(ct);
            }
            catch (MySqlException e) when (attempt < 30)
            {
                logger.LogWarning("MariaDB is not reachable yet ({Message}); retrying", e.Message);
                await Task.Delay(TimeSpan.FromSeconds(1), ct);
            }
        }
    }
}
