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
}
