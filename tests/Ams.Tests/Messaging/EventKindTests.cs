using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using Ams.Infrastructure;
using Ams.Infrastructure.Messaging;
using Ams.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using MySqlConnector;

namespace Ams.Tests.Messaging;

public sealed record Ping(string Text);

[JsonSourceGenerationOptions(System.Text.Json.JsonSerializerDefaults.Web)]
[JsonSerializable(typeof(Ping))]
sealed partial class PingJson : JsonSerializerContext;

/// <summary>An event kind the app has never heard of, registered the way a slice registers its own.</summary>
sealed class PingEvents() : EventKind<Ping>(Kind, PingJson.Default.Ping)
{
    public const string Kind = "test.ping";

    protected override string Html(Ping payload, string viewerUsername) => Ams.Infrastructure.Html.Of($"""<p class="ping">{payload.Text} for {viewerUsername}</p>""").Value;

    protected override Task<Ping?[]> LoadAsync(MySqlConnection connection, IReadOnlyList<StoredEvent> events) =>
        Task.FromResult(events.Select(e => e.SubjectId == 0 ? null : new Ping($"replayed {e.SubjectId} <b>")).ToArray<Ping?>());
}

/// <summary>
/// The live-event model is open: a kind is all in its slice (payload, HTML, replay), and the log,
/// the hub and the streams carry it without knowing it.
/// </summary>
public sealed class EventKindTests(Services services) : IClassFixture<Services>
{
    static async Task<long> UserIdAsync(IAlbaHost app, string username)
    {
        await using var connection = await app.Services.GetRequiredService<MariaDb>().OpenConnectionAsync();
        await using var command = new MySqlCommand("SELECT id FROM users WHERE username = @username", connection);
        command.Parameters.AddWithValue("@username", username);
        return (long)(ulong)(await command.ExecuteScalarAsync())!;
    }

    static async Task<long[]> AppendAsync(IAlbaHost app, params NewEvent[] events)
    {
        await using var connection = await app.Services.GetRequiredService<MariaDb>().OpenConnectionAsync();
        await using var transaction = await Transaction.BeginAsync(connection);
        var seqs = await EventLog.AppendAsync(connection, transaction, events, DateTime.UtcNow);
        await transaction.CommitAsync();
        return seqs;
    }

    [Fact]
    public async Task A_kind_registered_by_a_slice_reaches_json_and_html_streams_live_and_on_replay()
    {
        await using var app = await services.StartAppAsync(services: s => s.AddEventKind<PingEvents>());
        var alice = await app.MemberAsync("pa");
        var id = await UserIdAsync(app, alice.Name);
        await using var json = await SseClient.OpenAsync(app, alice.Token);
        await using var html = await SseClient.OpenAsync(app, alice.Token, path: "/events");

        var seqs = await AppendAsync(app, new NewEvent(id, PingEvents.Kind, 0, 7, id));
        await app.Services.GetRequiredService<EventLog>().PublishAsync(
            app.Services.GetRequiredService<PingEvents>().Live([id], seqs, new Ping("<hello>")));

        var live = (await json.NextAsync())!;
        Assert.Equal((seqs[0].ToString(), PingEvents.Kind), (live.Id, live.Event));
        Assert.Equal("<hello>", JsonNode.Parse(live.Data)!["text"]!.GetValue<string>());
        var fragment = (await html.NextAsync())!;
        Assert.Equal(PingEvents.Kind, fragment.Event);
        Assert.Equal($"""<p class="ping">&lt;hello&gt; for {alice.Name}</p>""", fragment.Data);

        // Replay rebuilds the payload through the kind; an event whose subject is gone is skipped.
        var gone = await AppendAsync(app, new NewEvent(id, PingEvents.Kind, 0, 0, id), new NewEvent(id, PingEvents.Kind, 0, 9, id));
        await using var replay = await SseClient.OpenAsync(app, alice.Token, (seqs[0] - 1).ToString());
        var first = (await replay.NextAsync())!;
        Assert.Equal((seqs[0].ToString(), "replayed 7 <b>"), (first.Id, JsonNode.Parse(first.Data)!["text"]!.GetValue<string>()));
        var second = (await replay.NextAsync())!;
        Assert.Equal((gone[1].ToString(), "replayed 9 <b>"), (second.Id, JsonNode.Parse(second.Data)!["text"]!.GetValue<string>()));
        await using var htmlReplay = await SseClient.OpenAsync(app, alice.Token, (seqs[0] - 1).ToString(), "/events");
        Assert.Equal($"""<p class="ping">replayed 7 &lt;b&gt; for {alice.Name}</p>""", (await htmlReplay.NextAsync())!.Data);
    }

    [Fact]
    public async Task One_append_numbers_every_recipient_consecutively_whatever_the_mix_of_users_and_kinds()
    {
        var app = await services.AppAsync();
        var alice = await app.MemberAsync("na");
        var bob = await app.MemberAsync("nb");
        var (a, b) = (await UserIdAsync(app, alice.Name), await UserIdAsync(app, bob.Name));
        var before = await AppendAsync(app, new NewEvent(a, "test.x", 0, 1, a), new NewEvent(b, "test.x", 0, 1, a));

        var seqs = await AppendAsync(app,
            new NewEvent(b, "test.x", 0, 2, a), new NewEvent(a, "test.y", 0, 2, a), new NewEvent(b, "test.y", 0, 3, b),
            new NewEvent(a, "test.x", 0, 4, b), new NewEvent(b, "test.x", 0, 4, b));

        Assert.Equal([before[1] + 1, before[0] + 1, before[1] + 2, before[0] + 2, before[1] + 3], seqs);
        await using var connection = await app.Services.GetRequiredService<MariaDb>().OpenConnectionAsync();
        await using var command = new MySqlCommand(
            "SELECT user_id, seq, kind, subject_id FROM events WHERE user_id IN (@a, @b) AND seq > 1 ORDER BY user_id, seq", connection);
        command.Parameters.AddWithValue("@a", a);
        command.Parameters.AddWithValue("@b", b);
        var stored = new List<(long, long, string, long)>();
        await using (var reader = await command.ExecuteReaderAsync())
            while (await reader.ReadAsync()) stored.Add((reader.GetInt64(0), reader.GetInt64(1), reader.GetString(2), reader.GetInt64(3)));
        Assert.Equal(new[] { (a, before[0] + 1, "test.y", 2L), (a, before[0] + 2, "test.x", 4L) }, stored.Where(r => r.Item1 == a).ToArray());
        Assert.Equal(new[] { (b, before[1] + 1, "test.x", 2L), (b, before[1] + 2, "test.y", 3L), (b, before[1] + 3, "test.x", 4L) },
            stored.Where(r => r.Item1 == b).ToArray());
    }
}
