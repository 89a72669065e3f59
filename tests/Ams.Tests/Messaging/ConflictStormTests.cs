using Ams.Infrastructure;
using Ams.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using MySqlConnector;

namespace Ams.Tests.Messaging;

/// <summary>
/// A write that loses its conflict on every attempt (on Galera, other nodes' writes to the same
/// rows certified first, forty times over): nothing stored, a 503 that says so, one log line.
/// MariaDB's own deadlock error, raised by a trigger on the test's rows, stands in for the lost
/// certification: it is the same error number, and each attempt meets it.
/// </summary>
public sealed class ConflictStormTests(Services services) : IClassFixture<Services>
{
    const string Deadlock = "SIGNAL SQLSTATE '40001' SET MYSQL_ERRNO = 1213, MESSAGE_TEXT = 'Deadlock found when trying to get lock; try restarting transaction'";

    static async Task SqlAsync(IAlbaHost app, string sql)
    {
        await using var connection = await app.Services.GetRequiredService<MariaDb>().OpenConnectionAsync();
        await using var command = new MySqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }

    static async Task AssertAnsweredAsStillConflictingAsync(IScenarioResult result, CapturedLogs logs, string logged)
    {
        var problem = await result.ProblemAsync(503);
        Assert.Equal("Other writes to the same data kept conflicting with this one, and it was not stored. Try again shortly.", problem["detail"].Str());
        Assert.Equal("1", result.Context.Response.Headers.RetryAfter.ToString());
        var line = Assert.Single(logs.Lines, l => l.Contains("still conflicting after 40 attempts", StringComparison.Ordinal));
        Assert.StartsWith($"Warning {logged}", line);
        Assert.DoesNotContain(logs.Lines, l => l.StartsWith("Error", StringComparison.Ordinal) || l.Contains("   at ", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_send_that_loses_every_conflict_is_a_503_saying_so_in_one_log_line_and_stores_nothing()
    {
        var logs = new CapturedLogs();
        await using var app = await services.StartAppAsync(services: s => s.AddSingleton<ILoggerProvider>(logs));
        var (alice, bob) = (await app.MemberAsync("cs"), await app.MemberAsync("cs"));
        var direct = (await app.DirectAsync(alice, bob)).Id();
        await SqlAsync(app, $"CREATE TRIGGER storm_send BEFORE INSERT ON messages FOR EACH ROW IF NEW.conversation_id = {direct} THEN {Deadlock}; END IF");
        try
        {
            var result = await app.PostAsync("/api/messages", new { conversationId = direct, body = "lost" }, alice.Token, null);
            await AssertAnsweredAsStillConflictingAsync(result, logs, "Ams.Features.SendMessage.GroupCommit: Send batch of 1 still conflicting");
        }
        finally
        {
            await SqlAsync(app, "DROP TRIGGER storm_send");
        }
        Assert.Equal("0", await services.ScalarAsync($"SELECT COUNT(*) FROM messages WHERE conversation_id = {direct}"));
        await app.SendAsync(alice, direct, "then stored");
    }

    [Fact]
    public async Task Any_other_write_that_loses_every_conflict_is_a_503_saying_so_in_one_log_line_and_changes_nothing()
    {
        var logs = new CapturedLogs();
        await using var app = await services.StartAppAsync(services: s => s.AddSingleton<ILoggerProvider>(logs));
        var (alice, bob) = (await app.MemberAsync("cs"), await app.MemberAsync("cs"));
        var group = (await app.GroupAsync(alice, "before", bob)).Id();
        await SqlAsync(app, $"CREATE TRIGGER storm_rename BEFORE UPDATE ON conversations FOR EACH ROW IF NEW.id = {group} THEN {Deadlock}; END IF");
        try
        {
            var result = await app.Scenario(s =>
            {
                s.Patch.Json(new { title = "after" }).ToUrl($"/api/conversations/{group}");
                s.WithBearerToken(alice.Token);
                s.IgnoreStatusCode();
            });
            await AssertAnsweredAsStillConflictingAsync(result, logs, $"Ams.Infrastructure.ConflictRetry: PATCH /api/conversations/{group} still conflicting");
        }
        finally
        {
            await SqlAsync(app, "DROP TRIGGER storm_rename");
        }
        Assert.Equal("before", await services.ScalarAsync($"SELECT title FROM conversations WHERE id = {group}"));
    }
}
