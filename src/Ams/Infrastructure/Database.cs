using Dapper;
using MySqlConnector;

[module: DapperAot]

namespace Ams.Infrastructure;

public static class Database
{
    /// <summary>
    /// Runs <paramref name="statements"/> one per round trip with the command's parameters; returns
    /// the rows the last one changed. Inside a transaction, statements that change data go one per
    /// round trip, never batched: on a Galera cluster a transaction aborted under a
    /// multi-statement batch (a conflicting write set applied from another node) does not stop
    /// the batch, and the statements after the abort point run on outside the transaction,
    /// committed one by one. Sent separately, the next statement (or the COMMIT) is refused with
    /// a deadlock error instead, and the transaction can run again whole (<see cref="ConflictRetry"/>).
    /// </summary>
    public static async Task<int> ExecuteEachAsync(this MySqlCommand command, params string[] statements)
    {
        var changed = 0;
        foreach (var statement in statements)
        {
            command.CommandText = statement;
            changed = await command.ExecuteNonQueryAsync();
        }
        return changed;
    }

    /// <summary>
    /// The connection's <c>Default Command Timeout</c>, for every Dapper call: Dapper.AOT's
    /// interceptors set a command's timeout to the call's <c>commandTimeout</c> or else to 0, which
    /// is no timeout at all, and a query on a hung MariaDB waited for as long as it hung (an outside
    /// check: reads in flight still waiting after 70 s). Not for the migrations: a schema change on a
    /// large table may rightly take minutes.
    /// </summary>
    public static int CommandTimeout(this MySqlConnection connection) => new MySqlCommand { Connection = connection }.CommandTimeout;

    public static IServiceCollection AddDatabase(this IServiceCollection services, IConfiguration config)
    {
        var connectionString = config.GetConnectionString("MariaDb");
        if (string.IsNullOrWhiteSpace(connectionString))
            throw new ConfigurationException(
                "ConnectionStrings:MariaDb is not set. Use `just run` for a local server, or set ConnectionStrings__MariaDb.");
        MySqlConnectionStringBuilder builder;
        try
        {
            builder = new MySqlConnectionStringBuilder(connectionString)
            {
                // DATETIME columns come back as DateTime; declare them UTC so ISO output carries 'Z'.
                DateTimeKind = MySqlDateTimeKind.Utc,
            };
        }
        catch (ArgumentException e)
        {
            // The client's own word ("Option 'srever' not supported.") did not say which setting it was about.
            throw new ConfigurationException($"ConnectionStrings:MariaDb: {e.Message}");
        }
        if (!connectionString.Contains("CharacterSet", StringComparison.OrdinalIgnoreCase))
            builder.CharacterSet = "utf8mb4";
        // Built by the container, not handed to it, so that stopping the host disposes it: an instance
        // registered ready-made is never disposed, and its idle connections stay open on the server.
        services.AddSingleton(_ => new MariaDb(builder.ConnectionString));
        services.AddSingleton<MariaDbCircuit>();
        services.AddHostedService<MariaDbWatch>();
        return services;
    }
}
