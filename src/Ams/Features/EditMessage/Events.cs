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
    /// A replay shows the message as it is now (a later edit's text, under its current key). A
    /// message deleted since is skipped: its own <c>message.deleted</c> event follows.
    /// </summary>
    protected override async Task<MessageView?[]> LoadAsync(MySqlConnection connection, IReadOnlyList<StoredEvent> events)
    {
        var byId = await MessageRow.LoadAsync(connection, envelope, events.Select(e => e.SubjectId));
        return events.Select(e => byId.TryGetValue(e.SubjectId, out var view) && !view.Deleted ? view : null).ToArray();
    }
}
