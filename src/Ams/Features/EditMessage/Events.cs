using Ams.Infrastructure;
using Ams.Infrastructure.Crypto;
using Ams.Infrastructure.Messaging;
using MySqlConnector;

namespace Ams.Features.EditMessage;

/// <summary>
/// <c>event: message.edited</c>: the whole <c>message</c> after an edit, for every member of its
/// conversation. The browser's fragment is the message element itself (same <c>id</c>), which
/// replaces the one shown.
/// </summary>
public sealed class EditedEvents(Envelope envelope) : EventKind<MessageView>(Kind, AppJsonContext.Default.MessageView)
{
    public const string Kind = "message.edited";

    protected override string Html(MessageView payload, string viewerUsername) => MessageFragment.Of(payload, viewerUsername).Value;

    /// <summary>
    /// Publishes the edited message to its members, each with their own <c>me</c> in its
    /// reactions (one publication per distinct payload).
    /// </summary>
    public async Task PublishAsync(EventLog log, MessageView view, long messageId, Dictionary<long, List<Reactions.Tally>> reactions, long[] members, long[] seqs)
    {
        var groups = new Dictionary<string, (MessageView View, List<long> Users, List<long> Seqs)>();
        for (var i = 0; i < members.Length; i++)
        {
            var mine = view with { Reactions = Reactions.For(reactions, messageId, members[i]) };
            var json = System.Text.Json.JsonSerializer.Serialize(mine, AppJsonContext.Default.MessageView);
            if (!groups.TryGetValue(json, out var group)) groups[json] = group = (mine, [], []);
            group.Users.Add(members[i]);
            group.Seqs.Add(seqs[i]);
        }
        foreach (var (payload, users, numbers) in groups.Values) await log.PublishAsync(Live([.. users], [.. numbers], payload));
    }

    /// <summary>
    /// A replay shows the message as it is now (a later edit's text, under its current key). A
    /// message deleted since is skipped: its own <c>message.deleted</c> event follows.
    /// </summary>
    protected override Task<MessageView?[]> LoadAsync(MySqlConnection connection, IReadOnlyList<StoredEvent> events) =>
        LoadAsync(connection, 0, events);

    protected override async Task<MessageView?[]> LoadAsync(MySqlConnection connection, long userId, IReadOnlyList<StoredEvent> events)
    {
        var byId = await MessageRow.LoadAsync(connection, envelope, events.Select(e => e.SubjectId), userId);
        return events.Select(e => byId.TryGetValue(e.SubjectId, out var view) && !view.Deleted ? view : null).ToArray();
    }
}
