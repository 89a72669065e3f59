using Ams.Tests.Attachments;
using Ams.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Primitives;

namespace Ams.Tests.Messaging;

/// <summary>
/// Idempotency-Key on POST /api/messages (api.md): a client that lost the answer retries with the
/// same key, on any node, and gets the first send back with nothing stored twice.
/// </summary>
public sealed class IdempotencyKeyTests(Services services) : IClassFixture<Services>
{
    internal static Task<IScenarioResult> SendWithKeyAsync(IAlbaHost app, Member sender, object body, StringValues key, int? status = null) =>
        app.Scenario(s =>
        {
            s.Post.Json(body).ToUrl("/api/messages");
            s.WithBearerToken(sender.Token);
            s.ConfigureHttpContext(c => c.Request.Headers["Idempotency-Key"] = key);
            if (status is { } expected) s.StatusCodeShouldBe(expected); else s.IgnoreStatusCode();
        });


    Task<string> MessagesInAsync(string conversationId) => services.ScalarAsync($"SELECT COUNT(*) FROM messages WHERE conversation_id = {conversationId}");

    [Fact]
    public async Task A_retry_on_another_node_returns_the_first_message_and_stores_nothing_new()
    {
        var node1 = await services.AppAsync();
        await using var node2 = await services.StartAppAsync();
        var alice = await node1.MemberAsync("ika");
        var bob = await node1.MemberAsync("ikb");
        var group = await node1.GroupAsync(alice, "keys", bob);
        var body = new { conversationId = group.Id(), body = "only once" };

        var first = await (await SendWithKeyAsync(node1, alice, body, "retry-1", 201)).JsonAsync();
        await using var stream = await SseClient.OpenAsync(node2, bob.Token, "0");
        var again = await (await SendWithKeyAsync(node2, alice, body, "retry-1", 201)).JsonAsync();

        Chat.SameJson(first, again, "the retried send's answer");
        // The same conversation written another way ("0" + its id) is the same request.
        var padded = await (await SendWithKeyAsync(node2, alice, new { conversationId = "0" + group.Id(), body = "only once" }, "retry-1", 201)).JsonAsync();
        Assert.Equal(first.Id(), padded.Id());
        Assert.Equal("1", await MessagesInAsync(group.Id()));
        Assert.Equal("1", await services.ScalarAsync($"SELECT COUNT(*) FROM events e JOIN users u ON u.id = e.user_id WHERE u.username = '{bob.Name}' AND e.subject_id = {first.Id()}"));
        // Bob's stream replays the one message, and the retry publishes nothing more.
        var replayed = await stream.NextOfAsync("message");
        Assert.Equal(first.Id(), JsonNode.Parse(replayed.Data)!.Id());
        var next = await node1.SendAsync(alice, group.Id(), "the next one");
        Assert.Equal(next.Id(), JsonNode.Parse((await stream.NextOfAsync("message")).Data)!.Id());

        // A key is the sender's own: Bob's send with the same key is a new message.
        var bobs = await (await SendWithKeyAsync(node1, bob, body, "retry-1", 201)).JsonAsync();
        Assert.NotEqual(first.Id(), bobs.Id());
        // A new key is a new send.
        var other = await (await SendWithKeyAsync(node1, alice, body, "retry-2", 201)).JsonAsync();
        Assert.NotEqual(first.Id(), other.Id());
        Assert.Equal("4", await MessagesInAsync(group.Id()));

        // A deleted message comes back as its tombstone, not as a new send.
        await node1.Scenario(s => { s.Delete.Url($"/api/messages/{first.Id()}"); s.WithBearerToken(alice.Token); s.StatusCodeShouldBe(204); });
        var tombstone = await (await SendWithKeyAsync(node2, alice, body, "retry-1", 201)).JsonAsync();
        Assert.Equal(first.Id(), tombstone.Id());
        Assert.True(tombstone["deleted"]!.GetValue<bool>());
        Assert.Equal("4", await MessagesInAsync(group.Id()));
    }

    [Fact]
    public async Task The_stored_request_is_keyed_so_a_dump_confirms_no_guessed_body_and_a_repeat_matches_across_a_key_rotation()
    {
        // A database of its own: a node listing another key first writes data keys under it.
        var database = "idemkey_" + Guid.NewGuid().ToString("N")[..8];
        async Task<string> SqlAsync(string sql) =>
            (await services.MariaDb.ExecuteAsRootAsync($"USE `{database}`; {sql}")).Split('\n', StringSplitOptions.RemoveEmptyEntries)[^1].Trim();
        await using var node1 = await services.StartAppAsync(database);
        var alice = await node1.MemberAsync("ikh");
        var bob = await node1.MemberAsync("iki");
        var group = await node1.GroupAsync(alice, "keyed", bob);
        var body = new { conversationId = group.Id(), body = "PIN 4711" };
        var first = await (await SendWithKeyAsync(node1, alice, body, "pin-1", 201)).JsonAsync();

        var stored = await SqlAsync($"SELECT request_sha256 FROM idempotency_keys WHERE message_id = {first.Id()}");
        Assert.Matches("^[0-9a-f]{64}$", stored);
        // What the send asked for, encoded as the node encodes it (length-prefixed fields): its plain hash is not what is kept.
        var request = $"{group.Id().Length}:{group.Id()}0:8:PIN 47110:";
        Assert.NotEqual(Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(request))), stored);

        // A node that has moved to a new master key (the old one listed second) still knows the repeat.
        var newKey = "next:" + Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32));
        await using var rotated = await services.StartAppAsync(database, new Dictionary<string, string?> { ["Crypto:MasterKeys"] = $"{newKey},{Services.MasterKeys}" });
        Assert.Equal(first.Id(), (await (await SendWithKeyAsync(rotated, alice, body, "pin-1", 201)).JsonAsync()).Id());
        await SendWithKeyAsync(rotated, alice, new { conversationId = group.Id(), body = "PIN 4712" }, "pin-1", 422);
        Assert.Equal("1", await SqlAsync($"SELECT COUNT(*) FROM messages WHERE conversation_id = {group.Id()}"));
    }

    [Fact]
    public async Task A_repeat_whose_message_is_gone_is_404_not_a_reused_key_and_sends_nothing()
    {
        var app = await services.AppAsync();
        var alice = await app.MemberAsync("ike");
        var bob = await app.MemberAsync("ikf");
        var group = await app.GroupAsync(alice, "keys", bob);
        var body = new { conversationId = group.Id(), body = "purged" };
        var first = await (await SendWithKeyAsync(app, alice, body, "gone", 201)).JsonAsync();
        // No endpoint removes a message row (a deletion leaves its tombstone); an operator's purge does.
        await services.SqlAsync($"DELETE FROM messages WHERE id = {first.Id()}");

        var problem = await (await SendWithKeyAsync(app, alice, body, "gone")).ProblemAsync(404);
        Assert.DoesNotContain("Idempotency-Key", problem["title"].Str());
        Assert.Equal("0", await MessagesInAsync(group.Id()));
    }

    [Fact]
    public async Task The_same_key_for_a_different_message_is_422_and_stores_nothing()
    {
        var app = await services.AppAsync();
        var alice = await app.MemberAsync("ikc");
        var bob = await app.MemberAsync("ikd");
        var group = await app.GroupAsync(alice, "keys", bob);
        await SendWithKeyAsync(app, alice, new { conversationId = group.Id(), body = "the first" }, "k", 201);
        var file = (await app.UploadAsync(alice, Files.Random(100, 3))).Id();

        foreach (var different in new object[]
        {
            new { conversationId = group.Id(), body = "a different body" },
            new { to = bob.Name, body = "the first" },
            new { conversationId = group.Id(), body = "the first", attachments = new[] { file } },
        })
        {
            var problem = await (await SendWithKeyAsync(app, alice, different, "k")).ProblemAsync(422);
            Assert.Contains("Idempotency-Key", problem["title"].Str());
        }
        Assert.Equal("1", await MessagesInAsync(group.Id()));
        Assert.Equal("0", await services.ScalarAsync($"SELECT COUNT(*) FROM conversation_members cm JOIN conversations c ON c.id = cm.conversation_id AND c.kind = 'direct' JOIN users u ON u.id = cm.user_id WHERE u.username = '{alice.Name}'"));
    }

    [Fact]
    public async Task A_repeat_while_the_first_send_still_holds_its_attachments_is_409_not_a_refusal_of_the_attachments()
    {
        var app = await services.AppAsync();
        var alice = await app.MemberAsync("ikf");
        var bob = await app.MemberAsync("ikg");
        var group = await app.GroupAsync(alice, "keys", bob);
        var file = (await app.UploadAsync(alice, Files.Random(100, 7))).Id();
        var body = new { conversationId = group.Id(), body = "with a file", attachments = new[] { file } };

        // What a first send does before its transaction commits: it claims the attachments.
        await services.SqlAsync($"UPDATE attachments SET message_id = 0 WHERE id = {file}");
        var busy = await SendWithKeyAsync(app, alice, body, "files-1");
        var problem = await busy.ProblemAsync(409);
        Assert.Contains("in progress", problem["title"].Str());
        Assert.Equal("1", busy.Context.Response.Headers.RetryAfter.ToString());
        Assert.Equal("0", await MessagesInAsync(group.Id()));
        // Without a key nothing says it is the same send: those attachments are taken.
        await app.Scenario(s => { s.Post.Json(body).ToUrl("/api/messages"); s.WithBearerToken(alice.Token); s.StatusCodeShouldBe(400); });

        // The first send failed and gave them back: the repeat stores the message, and the next
        // repeat (the attachments now linked to it) gets the same message back.
        await services.SqlAsync($"UPDATE attachments SET message_id = NULL WHERE id = {file}");
        var stored = await (await SendWithKeyAsync(app, alice, body, "files-1", 201)).JsonAsync();
        var again = await (await SendWithKeyAsync(app, alice, body, "files-1", 201)).JsonAsync();
        Chat.SameJson(stored, again, "the repeated send's answer");
        Assert.Equal("1", await MessagesInAsync(group.Id()));
        // Another send of the same, now sent, attachments is refused as before.
        await (await SendWithKeyAsync(app, alice, body, "files-2")).ProblemAsync(400);
    }

    [Fact]
    public async Task Repeats_racing_on_one_node_wait_for_the_first_and_refuse_no_batch()
    {
        var logs = new CapturedLogs();
        await using var app = await services.StartAppAsync(services: s => s.AddSingleton<ILoggerProvider>(logs));
        var alice = await app.MemberAsync("ikm");
        var bob = await app.MemberAsync("ikn");
        var group = await app.GroupAsync(alice, "repeats", bob);
        for (var round = 0; round < 5; round++)
        {
            var body = new { conversationId = group.Id(), body = $"once {round}" };
            // Other senders' sends share the batches: none of them may be written twice over or fail.
            var others = Enumerable.Range(0, 4).Select(i => app.Scenario(s =>
            {
                s.Post.Json(new { conversationId = group.Id(), body = $"other {round} {i}" }).ToUrl("/api/messages");
                s.WithBearerToken(bob.Token);
                s.StatusCodeShouldBe(201);
            }));
            var repeats = Enumerable.Range(0, 8).Select(async _ => (await (await SendWithKeyAsync(app, alice, body, $"repeat-{round}", 201)).JsonAsync()).Id());
            var ids = await Task.WhenAll(repeats);
            await Task.WhenAll(others);
            Assert.Single(ids.Distinct());
        }
        Assert.Equal($"{5 + 5 * 4}", await MessagesInAsync(group.Id()));
        Assert.DoesNotContain(logs.Lines, line => line.Contains("refused", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Repeats_sharing_the_first_sends_batch_get_422_for_another_body_and_404_for_a_non_member()
    {
        var logs = new CapturedLogs();
        await using var app = await services.StartAppAsync(services: s => s.AddSingleton<ILoggerProvider>(logs));
        var (alice, bob, carol) = (await app.MemberAsync("ikx"), await app.MemberAsync("iky"), await app.MemberAsync("ikz"));
        var group = await app.GroupAsync(alice, "one batch", bob);
        var blocker = await app.DirectAsync(bob, carol);
        // A batch held on a row lock of the test's: the sends below queue behind it and go together in the next batch.
        var (connection, transaction) = await services.LockConversationAsync(blocker.Id());
        await using var _ = connection;
        var held = app.SendAsync(bob, blocker.Id(), "holds the writer");
        await services.WaitUntilBlockedByAsync(connection, held);

        var alices = new[] { "the first", "another body" }
            .Select(body => SendWithKeyAsync(app, alice, new { conversationId = group.Id(), body }, "batched")).ToArray();
        // Carol is not in the group: her send and its repeat are refused alike.
        var carols = Enumerable.Range(0, 2)
            .Select(_ => SendWithKeyAsync(app, carol, new { conversationId = group.Id(), body = "not mine" }, "outsider")).ToArray();
        // In-process requests reach the queue within milliseconds; the held batch may wait 5 s for its lock.
        await Task.Delay(TimeSpan.FromSeconds(1));
        await transaction.RollbackAsync();
        await held;

        // Whichever of Alice's two was queued first is stored; the other is a different request under its key.
        var answers = await Task.WhenAll(alices);
        var stored = Assert.Single(answers, a => a.Context.Response.StatusCode == 201);
        var storedBody = (await stored.JsonAsync())["body"].Str();
        var refused = Assert.Single(answers, a => a != stored);
        Assert.Contains("Idempotency-Key", (await refused.ProblemAsync(422))["title"].Str());
        Assert.Equal(storedBody, Assert.Single(await app.HistoryAsync(alice, group.Id()))["body"].Str());
        foreach (var answer in await Task.WhenAll(carols)) await answer.ProblemAsync(404);
        Assert.Equal("0", await services.ScalarAsync($"SELECT COUNT(*) FROM idempotency_keys k JOIN users u ON u.id = k.sender_id WHERE u.username = '{carol.Name}'"));
        Assert.DoesNotContain(logs.Lines, line => line.Contains("refused", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Racing_retries_of_a_send_with_an_attachment_get_its_message_or_409_never_a_refusal_of_the_attachment()
    {
        // Racers that miss the first send count against the send throttle (they are told apart from it later).
        KeyValuePair<string, string?>[] settings = [new("Messaging:MaxSends", "1000")];
        await using var node1 = await services.StartAppAsync(settings: settings);
        await using var node2 = await services.StartAppAsync(settings: settings);
        var alice = await node1.MemberAsync("ikh");
        var bob = await node1.MemberAsync("iki");
        var group = await node1.GroupAsync(alice, "race files", bob);

        // The repeats that lose the claim ask whether the first send is done, then whether it still
        // holds the attachment; it may commit between the two questions (an outside check met a 400
        // in 3 of 20 rounds of six).
        const int rounds = 25;
        for (var round = 0; round < rounds; round++)
        {
            var file = (await node1.UploadAsync(alice, Files.Random(100, round))).Id();
            var body = new { conversationId = group.Id(), body = $"file {round}", attachments = new[] { file } };
            var answers = await Task.WhenAll(Enumerable.Range(0, 6).Select(async i =>
                (await SendWithKeyAsync(i % 2 == 0 ? node1 : node2, alice, body, $"file-race-{round}")).Context.Response.StatusCode));
            Assert.All(answers, status => Assert.True(status is 201 or 409, $"round {round}: {string.Join(", ", answers)}"));
            Assert.Contains(201, answers);
            // Each 409's next repeat gets the message.
            await SendWithKeyAsync(node2, alice, body, $"file-race-{round}", 201);
        }
        Assert.Equal($"{rounds}", await MessagesInAsync(group.Id()));
    }

    [Fact]
    public async Task Racing_retries_on_two_nodes_store_one_message_and_all_get_it()
    {
        var logs = new CapturedLogs();
        await using var node1 = await services.StartAppAsync(services: s => s.AddSingleton<ILoggerProvider>(logs));
        await using var node2 = await services.StartAppAsync(services: s => s.AddSingleton<ILoggerProvider>(logs));
        var alice = await node1.MemberAsync("ike");
        var bob = await node1.MemberAsync("ikf");
        var group = await node1.GroupAsync(alice, "race", bob);
        var body = new { conversationId = group.Id(), body = "raced" };

        for (var round = 0; round < 3; round++)
        {
            var key = $"race-{round}";
            var answers = await Task.WhenAll(Enumerable.Range(0, 8).Select(async i =>
            {
                var result = await SendWithKeyAsync(i % 2 == 0 ? node1 : node2, alice, body, key);
                Assert.Equal(201, result.Context.Response.StatusCode);
                return (await result.JsonAsync()).Id();
            }));
            Assert.Single(answers.Distinct());
        }
        Assert.Equal("3", await MessagesInAsync(group.Id()));
        Assert.Equal("3", await services.ScalarAsync($"SELECT COUNT(*) FROM idempotency_keys k JOIN users u ON u.id = k.sender_id WHERE u.username = '{alice.Name}'"));
        // A batch refused for a duplicate key (the two nodes' first sends racing: each node's own
        // repeats wait for its first) is logged by the error's name: the message would quote the key.
        Assert.DoesNotContain(logs.Lines, line => line.Contains("race-", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_repeat_queued_while_another_node_stores_its_key_gets_that_message_and_its_batch_mates_are_stored()
    {
        var logs = new CapturedLogs();
        await using var node1 = await services.StartAppAsync();
        await using var node2 = await services.StartAppAsync(services: s => s.AddSingleton<ILoggerProvider>(logs));
        var (alice, bob, carol) = (await node1.MemberAsync("ikr"), await node1.MemberAsync("iks"), await node1.MemberAsync("ikt"));
        var group = await node1.GroupAsync(alice, "cross-node", bob);
        var blocker = await node1.DirectAsync(bob, carol);
        var body = new { conversationId = group.Id(), body = "stored by node 1" };
        // Node 2's writer is held on a row lock of the test's; its repeat and Bob's send queue behind it.
        var (connection, transaction) = await services.LockConversationAsync(blocker.Id());
        await using var _ = connection;
        var held = node2.SendAsync(bob, blocker.Id(), "holds node 2's writer");
        await services.WaitUntilBlockedByAsync(connection, held);
        var repeat = SendWithKeyAsync(node2, alice, body, "cross-node-key");
        var batchMate = node2.SendAsync(bob, group.Id(), "shares the repeat's batch");
        await Task.Delay(TimeSpan.FromSeconds(1));
        // Meanwhile the same send is stored on node 1, key and all.
        var first = await (await SendWithKeyAsync(node1, alice, body, "cross-node-key", 201)).JsonAsync();
        await transaction.RollbackAsync();
        await held;

        // Node 2's batch meets the stored key: the repeat gets node 1's message, Bob's send is stored.
        var again = await repeat;
        Assert.Equal(201, again.Context.Response.StatusCode);
        Assert.Equal(first.Id(), (await again.JsonAsync()).Id());
        Assert.Equal("shares the repeat's batch", (await batchMate)["body"].Str());
        Assert.Equal("2", await MessagesInAsync(group.Id()));
        // A client's repeat is not the node's trouble: Information, by the error's name (its message quotes the key).
        Assert.Single(logs.Lines, line => line.StartsWith("Information", StringComparison.Ordinal)
            && line.Contains("Send batch of 2 refused (DuplicateKeyEntry); writing its sends one by one", StringComparison.Ordinal));
        Assert.DoesNotContain(logs.Lines, line => line.Contains("cross-node-key", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("")]
    [InlineData("has space")]
    [InlineData("naïve")]
    [InlineData("tab\there")]
    [InlineData("0123456789012345678901234567890123456789012345678901234567890123x")]
    public async Task A_malformed_key_is_400_and_sends_nothing(string key)
    {
        var app = await services.AppAsync();
        var alice = await app.MemberAsync("ikg");
        var bob = await app.MemberAsync("ikh");
        var group = await app.GroupAsync(alice, "bad keys", bob);
        var problem = await (await SendWithKeyAsync(app, alice, new { conversationId = group.Id(), body = "x" }, key)).ProblemAsync(400);
        Assert.Contains("Idempotency-Key", problem["title"].Str());
        Assert.Equal("0", await MessagesInAsync(group.Id()));
        Assert.DoesNotMatch(DocumentedKeyPattern(), key);
    }

    /// <summary>The key's pattern in docs/openapi.json, for clients that check a key before they send it.</summary>
    static string DocumentedKeyPattern()
    {
        var document = JsonNode.Parse(File.ReadAllText(Path.Combine(Ams.Testing.AppProcess.RepositoryRoot(), "docs", "openapi.json")))!;
        var parameters = document["paths"]!["/api/messages"]!["post"]!["parameters"]!.AsArray();
        return parameters.Single(p => p!["name"]!.GetValue<string>() == "Idempotency-Key")!["schema"]!["pattern"]!.GetValue<string>();
    }

    [Fact]
    public async Task Two_key_headers_are_400_and_the_longest_key_works()
    {
        var app = await services.AppAsync();
        var alice = await app.MemberAsync("iki");
        var bob = await app.MemberAsync("ikj");
        var group = await app.GroupAsync(alice, "keys", bob);
        var body = new { conversationId = group.Id(), body = "x" };
        await (await SendWithKeyAsync(app, alice, body, new StringValues(["a", "b"]))).ProblemAsync(400);
        Assert.Equal("0", await MessagesInAsync(group.Id()));

        var longest = new string('~', 63) + "!";
        Assert.Matches(DocumentedKeyPattern(), longest);
        var first = await (await SendWithKeyAsync(app, alice, body, longest, 201)).JsonAsync();
        Assert.Equal(first.Id(), (await (await SendWithKeyAsync(app, alice, body, longest, 201)).JsonAsync()).Id());
        Assert.Equal("1", await MessagesInAsync(group.Id()));
    }

    [Fact]
    public async Task A_retry_is_answered_even_when_the_sender_is_throttled()
    {
        await using var app = await services.StartAppAsync(settings: [new("Messaging:MaxSends", "1"), new("Messaging:Window", "00:01:00")]);
        var alice = await app.MemberAsync("ikk");
        var bob = await app.MemberAsync("ikl");
        var group = await app.GroupAsync(alice, "slow", bob);
        var body = new { conversationId = group.Id(), body = "once" };
        var first = await (await SendWithKeyAsync(app, alice, body, "t", 201)).JsonAsync();
        Assert.Equal(first.Id(), (await (await SendWithKeyAsync(app, alice, body, "t", 201)).JsonAsync()).Id());
        await (await SendWithKeyAsync(app, alice, body, "t2")).ProblemAsync(429);
    }

    [Fact]
    public async Task A_key_is_honoured_for_a_day_then_forgotten_and_the_sweeper_deletes_it()
    {
        var app = await services.AppAsync();
        var alice = await app.MemberAsync("ikm");
        var bob = await app.MemberAsync("ikn");
        var group = await app.GroupAsync(alice, "old keys", bob);
        var body = new { conversationId = group.Id(), body = "yesterday" };
        var first = await (await SendWithKeyAsync(app, alice, body, "old", 201)).JsonAsync();
        var stale = await (await SendWithKeyAsync(app, alice, body, "stale", 201)).JsonAsync();
        var fresh = await (await SendWithKeyAsync(app, alice, body, "fresh", 201)).JsonAsync();
        await services.SqlAsync($"UPDATE idempotency_keys SET created_at = created_at - INTERVAL 25 HOUR WHERE message_id IN ({first.Id()}, {stale.Id()})");
        await services.SqlAsync($"UPDATE idempotency_keys SET created_at = created_at - INTERVAL 23 HOUR WHERE message_id = {fresh.Id()}");
        // Within the day a key still answers with its message (api.md: 24 h).
        Assert.Equal(fresh.Id(), (await (await SendWithKeyAsync(app, alice, body, "fresh", 201)).JsonAsync()).Id());

        var anew = await (await SendWithKeyAsync(app, alice, body, "old", 201)).JsonAsync();
        Assert.NotEqual(first.Id(), anew.Id());
        Assert.Equal(anew.Id(), (await (await SendWithKeyAsync(app, alice, body, "old", 201)).JsonAsync()).Id());

        var swept = await app.Services.GetRequiredService<Ams.Features.SendMessage.KeySweeper>().SweepAsync();
        Assert.True(swept >= 1);
        Assert.Equal("0", await services.ScalarAsync($"SELECT COUNT(*) FROM idempotency_keys WHERE message_id = {stale.Id()}"));
        Assert.Equal("1", await services.ScalarAsync($"SELECT COUNT(*) FROM idempotency_keys WHERE message_id = {fresh.Id()}"));
        Assert.Equal("1", await services.ScalarAsync($"SELECT COUNT(*) FROM idempotency_keys WHERE message_id = {anew.Id()}"));
    }
}
