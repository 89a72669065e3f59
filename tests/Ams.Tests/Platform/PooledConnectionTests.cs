using Ams.Infrastructure;
using Ams.Tests.Messaging;
using Ams.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using MySqlConnector;

namespace Ams.Tests.Platform;

/// <summary>
/// The node's MariaDB pool hands a connection out again as it was left, without a reset (which
/// would cost Galera its causal reads, see MariaDb.Host): nothing may leave session state behind,
/// and a connection the server dropped must not reach a request.
/// </summary>
public sealed class PooledConnectionTests(Services services) : IClassFixture<Services>
{
    /// <summary>Every connection the pool holds idle (and more, new): each has the server's session defaults.</summary>
    static async Task AssertEveryPooledConnectionHasTheDefaultsAsync(IAlbaHost app)
    {
        var db = app.Services.GetRequiredService<MariaDb>();
        var connections = await Task.WhenAll(Enumerable.Range(0, 20).Select(_ => db.OpenConnectionAsync().AsTask()));
        try
        {
            foreach (var connection in connections)
            {
                await using var settings = new MySqlCommand(
                    "SELECT CONCAT(@@session.autocommit + 0, ' ', @@session.innodb_lock_wait_timeout, ' ', @@in_transaction)", connection);
                Assert.Equal("1 50 0", await settings.ExecuteScalarAsync());
            }
        }
        finally
        {
            foreach (var connection in connections) await connection.DisposeAsync();
        }
    }

    [Theory]
    [InlineData("Server=127.0.0.1;Connection Reset=true;Database=ams")]
    [InlineData("Server=db1,db2,db3;LoadBalance=FailOver;ConnectionReset=True;Database=ams")]
    public async Task No_pool_resets_its_connections_or_kills_a_timed_out_query_even_when_the_connection_string_asks(string connectionString)
    {
        await using var db = new MariaDb(connectionString + ";Cancellation Timeout=2");
        Assert.All(db.Hosts, host =>
        {
            var settings = new MySqlConnectionStringBuilder(host.ConnectionString);
            Assert.False(settings.ConnectionReset);
            // -1: a query past its timeout closes its connection (README, ConnectionStrings__MariaDb).
            Assert.Equal(-1, settings.CancellationTimeout);
        });
    }

    [Fact]
    public async Task A_transaction_left_without_its_commit_is_rolled_back_and_its_connection_goes_back_to_the_pool_clean()
    {
        var app = await services.AppAsync();
        await services.SqlAsync("CREATE TABLE IF NOT EXISTS transaction_probe (id INT PRIMARY KEY)");
        var db = app.Services.GetRequiredService<MariaDb>();
        await using (var connection = await db.OpenConnectionAsync())
        {
            await using (var transaction = await Transaction.BeginAsync(connection))
            {
                await using var insert = new MySqlCommand("INSERT INTO transaction_probe VALUES (1)", connection);
                await insert.ExecuteNonQueryAsync();
                await using var inside = new MySqlCommand("SELECT @@in_transaction", connection);
                Assert.Equal(1L, Convert.ToInt64(await inside.ExecuteScalarAsync()));
                // Left without a commit, as when a statement fails or the endpoint returns early.
            }
            await using var after = new MySqlCommand("SELECT CONCAT(@@session.autocommit + 0, ' ', @@in_transaction, ' ', (SELECT COUNT(*) FROM transaction_probe))", connection);
            Assert.Equal("1 0 0", await after.ExecuteScalarAsync());
            await using (var transaction = await Transaction.BeginAsync(connection))
            {
                await using var insert = new MySqlCommand("INSERT INTO transaction_probe VALUES (2)", connection);
                await insert.ExecuteNonQueryAsync();
                await transaction.CommitAsync();
            }
        }
        Assert.Equal("2", await services.ScalarAsync("SELECT GROUP_CONCAT(id) FROM transaction_probe"));
        await AssertEveryPooledConnectionHasTheDefaultsAsync(app);
    }

    [Fact]
    public async Task The_send_writer_leaves_no_session_setting_on_a_pooled_connection_after_commits_or_refused_batches()
    {
        await using var own = await GroupCommitTests.OwnMariaDbAsync(services, "");
        var (mariadb, app, logs, alice, bob, direct) = own;

        for (var i = 0; i < 3; i++) await app.SendAsync(i % 2 == 0 ? alice : bob, direct, $"plain {i}");
        await Task.Delay(TimeSpan.FromMilliseconds(300));   // the writer waits 50 ms for another send, then hands its connection back
        await AssertEveryPooledConnectionHasTheDefaultsAsync(app);

        // Batches MariaDB refuses (Bob's sends, by a trigger, as a duplicate key) and rolls back,
        // then their sends written one by one, Bob's refused again.
        await using (var root = new MySqlConnection(mariadb.ConnectionString("ams")))
        {
            await root.OpenAsync();
            await using var trigger = new MySqlCommand($"""
                CREATE TRIGGER refuse_bob BEFORE INSERT ON events FOR EACH ROW
                IF NEW.actor_id = (SELECT id FROM users WHERE username = '{bob.Name}') THEN SIGNAL SQLSTATE '23000' SET MYSQL_ERRNO = 1062, MESSAGE_TEXT = 'refused by the test'; END IF
                """, root);
            await trigger.ExecuteNonQueryAsync();
        }
        var answers = await Task.WhenAll(Enumerable.Range(0, 8).Select(i =>
            app.PostAsync("/api/messages", new { conversationId = direct, body = $"raced {i}" }, i % 2 == 0 ? alice.Token : bob.Token, null)));
        Assert.Equal([201, 503, 201, 503, 201, 503, 201, 503], answers.Select(a => a.Status()));
        // A duplicate in a batch without Idempotency-Keys is no client's repeat: a warning.
        Assert.Contains(logs.Lines, line => line.StartsWith("Warning ", StringComparison.Ordinal) && line.Contains("refused (DuplicateKeyEntry)", StringComparison.Ordinal));
        await Task.Delay(TimeSpan.FromMilliseconds(300));
        await AssertEveryPooledConnectionHasTheDefaultsAsync(app);
    }

    [Fact]
    public async Task After_MariaDB_restarts_no_request_gets_a_connection_from_before()
    {
        await using var own = await GroupCommitTests.OwnMariaDbAsync(services, "");
        var (mariadb, app, _, alice, bob, direct) = own;
        Task<int> AnyRequestAsync(int i) => i % 4 == 0
            ? app.PostAsync("/api/messages", new { conversationId = direct, body = $"after {i}" }, bob.Token, null).ContinueWith(t => t.Result.Status())
            : app.GetAsync("/api/conversations", alice.Token, null).ContinueWith(t => t.Result.Status());

        async Task RestartWithAFullPoolAsync()
        {
            // Twenty requests at once leave as many idle connections in the pool.
            Assert.All(await Task.WhenAll(Enumerable.Range(0, 20).Select(AnyRequestAsync)), status => Assert.True(status is 200 or 201));
            await Task.Delay(TimeSpan.FromSeconds(1.5));   // the node's watch (once a second) holds a connection of its own
            await mariadb.StopAsync();
            await mariadb.StartAgainAsync();
        }

        // Once the watch has seen the restart (its own connection died with the server), none.
        await RestartWithAFullPoolAsync();
        await Task.Delay(TimeSpan.FromSeconds(1.5));
        var statuses = await Task.WhenAll(Enumerable.Range(0, 20).Select(AnyRequestAsync));
        Assert.True(statuses.All(status => status is 200 or 201), $"twenty requests at once after the restart: {string.Join(", ", statuses)}");

        // At once, before the watch's next turn most likely: the first request to meet a connection
        // from before the restart fails, and the others it left in the pool go with it. (The outage
        // is counted as its answer goes out: the next request may meet one more.)
        await RestartWithAFullPoolAsync();
        var first = new List<int>();
        for (var i = 0; i < 10; i++) first.Add(await AnyRequestAsync(i + 1));
        Assert.True(first.Count(status => status is not (200 or 201)) <= 2, $"requests one by one right after the restart: {string.Join(", ", first)}");
    }

    [Fact]
    public async Task Connections_in_use_answer_while_the_pool_is_forgotten_over_and_over()
    {
        await using var db = new MariaDb(services.MariaDb.ConnectionString(services.Database));
        using var stop = new CancellationTokenSource();
        var forgetting = Task.Run(async () =>
        {
            var times = 0;
            for (; !stop.IsCancellationRequested; times++) await db.ForgetConnectionsAsync();
            return times;
        });
        var answers = await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => Task.Run(async () =>
        {
            var answered = 0;
            for (var i = 0; i < 150; i++)
            {
                await using var connection = await db.OpenConnectionAsync();
                await using var select = new MySqlCommand("SELECT 1", connection);
                answered += Convert.ToInt32(await select.ExecuteScalarAsync());
            }
            return answered;
        })));
        await stop.CancelAsync();
        Assert.Equal(8 * 150, answers.Sum());
        Assert.True(await forgetting > 10, "the pool was hardly forgotten while connections opened");
    }
}
