using Dapper;
using MySqlConnector;

[module: DapperAot]

namespace Ams.Infrastructure;

public static class Database
{
    public static IServiceCollection AddDatabase(this IServiceCollection services, IConfiguration config)
    {
        var connectionString = config.GetConnectionString("MariaDb");
        if (string.IsNullOrWhiteSpace(connectionString))
            throw new ConfigurationException(
                "ConnectionStrings:MariaDb is not set. Use `just run` for a local server, or set ConnectionStrings__MariaDb.");
        var builder = new MySqlConnectionStringBuilder(connectionString)
        {
            // DATETIME columns come back as DateTime; declare them UTC so ISO output carries 'Z'.
            DateTimeKind = MySqlDateTimeKind.Utc,
        };
        if (!connectionString.Contains("CharacterSet", StringComparison.OrdinalIgnoreCase))
            builder.CharacterSet = "utf8mb4";
        services.AddSingleton(new MySqlDataSourceBuilder(builder.ConnectionString).Build());
        return services;
    }
}
