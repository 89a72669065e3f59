using Ams.Infrastructure.Messaging;
using MySqlConnector;

namespace Ams.Features.Typing;

/// <summary>api.md's <c>event: typing</c> payload.</summary>
public sealed record TypingView(string ConversationId, string Username);

/// <summary>
/// <c>event: typing</c>: someone is typing in a conversation, for its other members connected
/// now. Ephemeral: never stored, no <c>id:</c>, never replayed.
/// </summary>
public sealed class TypingEvents() : EventKind<TypingView>(Kind, TypingJson.Default.TypingView)
{
    public const string Kind = "typing";

    protected override string Html(TypingView payload, string viewerUsername) => Ams.Infrastructure.Html.Of(
        $"""<span class="typing" data-conversation="{payload.ConversationId}" data-username="{payload.Username}">{payload.Username} is typing…</span>""").Value;

    // Nothing of this kind is ever stored, so nothing is replayed.
    protected override Task<TypingView?[]> LoadAsync(MySqlConnection connection, IReadOnlyList<StoredEvent> events) =>
        Task.FromResult(new TypingView?[events.Count]);
}
