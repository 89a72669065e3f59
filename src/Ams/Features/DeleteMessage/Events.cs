using Ams.Infrastructure;
using Ams.Infrastructure.Messaging;
using MySqlConnector;

namespace Ams.Features.DeleteMessage;

/// <summary>api.md's <c>message.deleted</c> payload.</summary>
public sealed record DeletedView(string Id, string ConversationId);

/// <summary><c>event: message.deleted</c>: a message became a tombstone, for every member of its conversation.</summary>
public sealed class DeletedEvents() : EventKind<DeletedView>(Kind, DeleteMessageJson.Default.DeletedView)
{
    public const string Kind = "message.deleted";

    protected override string Html(DeletedView payload, string viewerUsername) =>
        Ams.Infrastructure.Html.Of($"""<li id="m-{payload.Id}" class="message deleted" data-conversation="{payload.ConversationId}"><p class="muted">Message deleted</p></li>""").Value;

    // Everything the payload says is in the stored event itself.
    protected override Task<DeletedView?[]> LoadAsync(MySqlConnection connection, IReadOnlyList<StoredEvent> events) =>
        Task.FromResult(events.Select(e => (DeletedView?)new DeletedView(Ids.Of(e.SubjectId), Ids.Of(e.ConversationId))).ToArray());
}
