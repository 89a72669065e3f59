using Ams.Tests.Support;

namespace Ams.Tests.Platform;

public sealed class MigrationTests(Services services) : IClassFixture<Services>
{
    [Fact]
    public async Task Two_nodes_starting_together_on_an_empty_database_apply_each_migration_once()
    {
        var database = "fresh_" + Guid.NewGuid().ToString("N")[..8];
        var nodes = await Task.WhenAll(services.StartAppAsync(database), services.StartAppAsync(database));
        try
        {
            var rows = await services.MariaDb.ExecuteAsRootAsync($"SELECT version, COUNT(*) FROM {database}.schema_migrations GROUP BY version");
            var lines = rows.Trim().Split('\n').Skip(1).ToList();
            Assert.NotEmpty(lines);
            Assert.All(lines, l => Assert.EndsWith("\t1", l.TrimEnd()));
            var charset = await services.MariaDb.ExecuteAsRootAsync(
                $"SELECT DISTINCT CHARACTER_SET_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = '{database}' AND TABLE_NAME = 'users' AND COLUMN_NAME = 'display_name'");
            Assert.Contains("utf8mb4", charset);
            // Both nodes serve the same schema.
            var name = Api.UniqueName();
            await nodes[0].RegisterAsync(name);
            await nodes[1].LoginAsync(name);
        }
        finally
        {
            foreach (var node in nodes) await node.DisposeAsync();
        }
    }

    // The lock row as a node holding it leaves it (Migrations.ClaimAsync creates the table the same way).
    async Task<string> DatabaseWithMigrationLockAsync(string holder, int expiresInSeconds)
    {
        var database = "locked_" + Guid.NewGuid().ToString("N")[..8];
        await services.MariaDb.CreateDatabaseAsync(database);
        await services.MariaDb.ExecuteAsRootAsync($"""
            CREATE TABLE {database}.schema_lock (id TINYINT UNSIGNED NOT NULL PRIMARY KEY, holder VARCHAR(64) NOT NULL, expires_at DATETIME(3) NOT NULL);
            INSERT INTO {database}.schema_lock VALUES (1, '{holder}', UTC_TIMESTAMP(3) + INTERVAL {expiresInSeconds} SECOND);
            """);
        return database;
    }

    [Fact]
    public async Task A_node_waits_while_another_holds_the_migration_lock_and_migrates_once_it_is_released()
    {
        var database = await DatabaseWithMigrationLockAsync("another node", 60);
        var starting = services.StartAppAsync(database);
        await Task.Delay(TimeSpan.FromSeconds(1.5));
        Assert.False(starting.IsCompleted);
        Assert.Contains("0", await services.MariaDb.ExecuteAsRootAsync(
            $"SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = '{database}' AND TABLE_NAME = 'users'"));

        await services.MariaDb.ExecuteAsRootAsync($"UPDATE {database}.schema_lock SET holder = ''");
        await using var node = await starting.WaitAsync(TimeSpan.FromSeconds(60));
        await node.RegisterAsync(Api.UniqueName());
        // Released again after the migrations, for the next node to start without waiting.
        Assert.Contains("\t1", await services.MariaDb.ExecuteAsRootAsync(
            $"SELECT holder, holder = '' FROM {database}.schema_lock"));
    }

    [Fact]
    public async Task A_lock_left_by_a_node_that_died_lapses_and_the_next_node_migrates()
    {
        var database = await DatabaseWithMigrationLockAsync("a node that died", 2);
        await using var node = await services.StartAppAsync(database).WaitAsync(TimeSpan.FromSeconds(60));
        await node.RegisterAsync(Api.UniqueName());
        var versions = await services.MariaDb.ExecuteAsRootAsync($"SELECT COUNT(*) FROM {database}.schema_migrations");
        Assert.True(int.Parse(versions.Trim().Split('\n')[1]) >= 12);
    }
}
