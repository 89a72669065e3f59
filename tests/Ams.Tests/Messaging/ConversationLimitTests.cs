using Ams.Tests.Support;
using MySqlConnector;

namespace Ams.Tests.Messaging;

/// <summary>Issue 12's bounds on groups, reads and the inbox.</summary>
public sealed class ConversationLimitTests(Services services) : IClassFixture<Services>
{
    [Fact]
    public async Task A_group_cannot_grow_past_Conversations_MaxMembers()
    {
        await using var app = await services.StartAppAsync(settings: new Dictionary<string, string?> { ["Conversations:MaxMembers"] = "3" });
        var m = await app.MembersAsync(5, "big");
        var tooBig = await app.PostAsync("/api/conversations", new { members = new[] { m[1].Name, m[2].Name, m[3].Name }, title = "big" }, m[0].Token, 400);
        Assert.Equal("A conversation has at most 3 members.", (await tooBig.ProblemAsync(400))["errors"]![0]!["reason"].Str());
        var fourNames = await app.PostAsync("/api/conversations", new { members = new[] { m[1].Name, m[2].Name, m[3].Name, m[4].Name }, title = "big" }, m[0].Token, 400);
        Assert.Equal("A conversation has at most 3 members.", (await fourNames.ProblemAsync(400))["errors"]![0]!["reason"].Str());
        Assert.Empty(await app.InboxAsync(m[0]));
        var group = await app.GroupAsync(m[0], "three", m[1], m[2]);
        var full = await app.PostAsync($"/api/conversations/{group.Id()}/members", new { username = m[3].Name }, m[0].Token, 409);
        Assert.Contains("at most 3 members", (await full.ProblemAsync(409))["detail"].Str());
        Assert.Equal(3, (await app.ConversationAsync(m[0], group.Id()))["members"]!.AsArray().Count);
        // Adding someone already in it is still fine.
        await app.PostAsync($"/api/conversations/{group.Id()}/members", new { username = m[1].Name }, m[0].Token, 200);
    }

    [Fact]
    public async Task A_create_run_again_after_a_deadlock_counts_once_against_the_users_budget()
    {
        // The class's database: its user ids are unique within the Redis the class shares, so
        // the budget counted here is this test's users' alone.
        await using var app = await services.StartAppAsync(settings: new Dictionary<string, string?> { ["Conversations:MaxCreates"] = "2" });
        var m = await app.MembersAsync(2, "cc");
        // The next conversation INSERT fails once with MariaDB's deadlock error, as a Galera
        // certification failure does; the count lives in a MyISAM table, which the failed
        // statement's rollback leaves alone.
        await services.SqlAsync("CREATE TABLE test_deadlocks (n INT NOT NULL) ENGINE=MyISAM; INSERT INTO test_deadlocks VALUES (1);");
        await using (var connection = new MySqlConnection(services.MariaDb.ConnectionString(services.Database)))
        {
            await connection.OpenAsync();
            await new MySqlCommand("""
                CREATE TRIGGER test_deadlock BEFORE INSERT ON conversations FOR EACH ROW
                IF (SELECT n FROM test_deadlocks) > 0 THEN
                  UPDATE test_deadlocks SET n = n - 1;
                  SIGNAL SQLSTATE '40001' SET MYSQL_ERRNO = 1213, MESSAGE_TEXT = 'Deadlock found by the test';
                END IF
                """, connection).ExecuteNonQueryAsync();
        }
        try
        {
            await app.GroupAsync(m[0], "after a deadlock", m[1]);
            Assert.Equal("0", await services.ScalarAsync("SELECT n FROM test_deadlocks"));   // the deadlock happened
            // Two creates are the budget: the retried one counted once, so the second still fits.
            await app.GroupAsync(m[0], "second", m[1]);
            var third = await app.PostAsync("/api/conversations", new { members = new[] { m[1].Name }, title = "third" }, m[0].Token, 429);
            await third.ProblemAsync(429);
        }
        finally
        {
            await services.SqlAsync("DROP TRIGGER test_deadlock; DROP TABLE test_deadlocks;");
        }
    }

    [Fact]
    public async Task Creating_conversations_adding_members_and_marking_read_are_throttled_per_user()
    {
        await using var app = await services.StartAppAsync(settings: new Dictionary<string, string?>
        {
            ["Conversations:MaxCreates"] = "2",
            ["Conversations:MaxMemberAdds"] = "2",
            ["Conversations:MaxReads"] = "2",
        });
        var m = await app.MembersAsync(6, "thr");
        var group = await app.GroupAsync(m[0], "one", m[1]);
        await app.GroupAsync(m[0], "two", m[1]);
        var created = await app.PostAsync("/api/conversations", new { members = new[] { m[1].Name }, title = "three" }, m[0].Token, 429);
        await created.ProblemAsync(429);
        Assert.True(int.Parse(created.Context.Response.Headers.RetryAfter.ToString()) >= 1);

        await app.PostAsync($"/api/conversations/{group.Id()}/members", new { username = m[2].Name }, m[0].Token, 200);
        await app.PostAsync($"/api/conversations/{group.Id()}/members", new { username = m[3].Name }, m[0].Token, 200);
        var added = await app.PostAsync($"/api/conversations/{group.Id()}/members", new { username = m[4].Name }, m[0].Token, 429);
        Assert.True(added.Context.Response.Headers.ContainsKey("Retry-After"));

        var messages = new List<string>();
        for (var i = 0; i < 3; i++) messages.Add((await app.SendAsync(m[1], group.Id(), $"m{i}")).Id());
        await app.PostAsync($"/api/conversations/{group.Id()}/read", new { upTo = messages[0] }, m[0].Token, 204);
        await app.PostAsync($"/api/conversations/{group.Id()}/read", new { upTo = messages[1] }, m[0].Token, 204);
        var read = await app.PostAsync($"/api/conversations/{group.Id()}/read", new { upTo = messages[2] }, m[0].Token, 429);
        Assert.True(read.Context.Response.Headers.ContainsKey("Retry-After"));
    }

    [Fact]
    public async Task A_read_that_does_not_move_the_mark_records_and_publishes_nothing()
    {
        var app = await services.AppAsync();
        var alice = await app.MemberAsync("rm");
        var bob = await app.MemberAsync("rm");
        var direct = await app.DirectAsync(alice, bob);
        var first = (await app.SendAsync(alice, direct.Id(), "one")).Id();
        var second = (await app.SendAsync(alice, direct.Id(), "two")).Id();
        await app.PostAsync($"/api/conversations/{direct.Id()}/read", new { upTo = second }, bob.Token, 204);
        var events = await services.SqlAsync("SELECT COUNT(*) FROM events WHERE kind = 'read'");
        await using var stream = await SseClient.OpenAsync(app, alice.Token);
        await app.PostAsync($"/api/conversations/{direct.Id()}/read", new { upTo = second }, bob.Token, 204);
        await app.PostAsync($"/api/conversations/{direct.Id()}/read", new { upTo = first }, bob.Token, 204);
        Assert.True(await stream.QuietForAsync(TimeSpan.FromSeconds(1)));
        Assert.Equal(events, await services.SqlAsync("SELECT COUNT(*) FROM events WHERE kind = 'read'"));
    }

    [Fact]
    public async Task The_inbox_pages_with_limit_and_before_newest_first()
    {
        var app = await services.AppAsync();
        var alice = await app.MemberAsync("pg");
        var others = await app.MembersAsync(5, "pg");
        var ids = new List<string>();
        foreach (var other in others)
        {
            var direct = await app.DirectAsync(alice, other);
            await app.SendAsync(other, direct.Id(), "hi");
            ids.Add(direct.Id());
            await Task.Delay(5);
        }
        ids.Reverse();   // newest activity first
        Assert.Equal(ids, (await app.InboxAsync(alice)).Select(c => c!.Id()));
        var seen = new List<string>();
        string? before = null;
        for (var i = 0; i < 10 && seen.Count < ids.Count; i++)
        {
            var page = (await (await app.GetAsync($"/api/conversations?limit=2{(before is null ? "" : "&before=" + before)}", alice.Token, 200)).JsonAsync()).AsArray();
            Assert.InRange(page.Count, 1, 2);
            seen.AddRange(page.Select(c => c!.Id()));
            before = page[^1]!.Id();
        }
        Assert.Equal(ids, seen);
        Assert.Empty((await (await app.GetAsync($"/api/conversations?limit=2&before={ids[^1]}", alice.Token, 200)).JsonAsync()).AsArray());
        foreach (var bad in new[] { "limit=0", "limit=201", "limit=x", "before=abc" })
            await (await app.GetAsync($"/api/conversations?{bad}", alice.Token, 400)).ProblemAsync(400);
        // Another user's conversation, or none, is no cursor: a 404, where an empty page would read as the end.
        var stranger = await app.MemberAsync("pg");
        foreach (var cursor in new[] { ids[0], "999999999" })
            Assert.Equal("Conversation not found", (await (await app.GetAsync($"/api/conversations?before={cursor}", stranger.Token, 404)).ProblemAsync(404))["title"].Str());
    }
}
