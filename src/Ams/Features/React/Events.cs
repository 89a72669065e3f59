using Ams.Infrastructure;
using Ams.Infrastructure.Messaging;
using Dapper;
using MySqlConnector;

namespace Ams.Features.React;

/// <summary>
/// api.md's <c>event: reaction</c> payload: <paramref name="Username"/> added or took back
/// <paramref name="Emoji"/>, and how many have it on the message as the event is sent
/// (<paramref name="Count"/>). A client sets the count rather than adding one: a message it got
/// replayed, or read on a page, already shows the reactions made up to that moment, including
/// ones whose own events come after it.
/// </summary>
public sealed record ReactionChange(string MessageId, string ConversationId, string Emoji, string Username, bool Added, int Count);

/// <summary><c>event: reaction</c>, for every member of the message's conversation.</summary>
public sealed class ReactionEvents() : EventKind<ReactionChange>(Kind, ReactJson.Default.ReactionChange)
{
    public const string Kind = "reaction";

    /// <summary>The browser's fragment: which message, emoji and user; app.js updates the message's counts.</summary>
    protected override string Html(ReactionChange payload, string viewerUsername) => Ams.Infrastructure.Html.Of(
        $"""<span class="reaction-change" data-message="{payload.MessageId}" data-conversation="{payload.ConversationId}" data-emoji="{payload.Emoji}" data-username="{payload.Username}" data-added="{(payload.Added ? "true" : "false")}" data-count="{payload.Count}"{(payload.Username == viewerUsername ? Ams.Infrastructure.Html.Raw(" data-mine=\"true\"") : Ams.Infrastructure.Html.Empty)}></span>""").Value;

    /// <summary>Replays the stored change with today's count; a change on a message deleted since is skipped.</summary>
    protected override async Task<ReactionChange?[]> LoadAsync(MySqlConnection connection, IReadOnlyList<StoredEvent> events)
    {
        var rows = (await connection.QueryAsync<Row>($"""
            SELECT rc.id AS Id, rc.message_id AS MessageId, m.conversation_id AS ConversationId, rc.emoji AS Emoji, u.username AS Username, rc.added AS Added
            FROM {SqlLists.IdsTable} JOIN reaction_changes rc ON rc.id = ids.id
            JOIN messages m ON m.id = rc.message_id AND m.deleted_at IS NULL JOIN users u ON u.id = rc.user_id
            """, new { ids = SqlLists.Ids(events.Select(e => e.SubjectId).Distinct()) }, commandTimeout: connection.CommandTimeout())).ToDictionary(r => r.Id);
        var tallies = await Reactions.LoadAsync(connection, rows.Values.Select(r => r.MessageId));
        return events.Select(e => rows.TryGetValue(e.SubjectId, out var r)
            ? new ReactionChange(Ids.Of(r.MessageId), Ids.Of(r.ConversationId), r.Emoji, r.Username, r.Added, CountOf(tallies, r.MessageId, r.Emoji))
            : null).ToArray();
    }

    /// <summary>How many have <paramref name="emoji"/> (in its one spelling) on the message, from <see cref="Reactions.LoadAsync"/>.</summary>
    public static int CountOf(Dictionary<long, List<Reactions.Tally>> tallies, long messageId, string emoji) =>
        tallies.TryGetValue(messageId, out var list) && list.Find(t => t.Emoji == Emoji.Canonical(emoji)) is { } tally ? tally.Users.Count : 0;

    internal sealed class Row
    {
        public long Id { get; set; }
        public long MessageId { get; set; }
        public long ConversationId { get; set; }
        public string Emoji { get; set; } = "";
        public string Username { get; set; } = "";
        public bool Added { get; set; }
    }
}
