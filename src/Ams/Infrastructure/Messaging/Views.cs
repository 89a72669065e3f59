using System.Globalization;

namespace Ams.Infrastructure.Messaging;

/// <summary>api.md's <c>members[]</c> entry and <c>message.sender</c>.</summary>
public sealed record MemberView(string Username, string DisplayName);

/// <summary>
/// A display name is anyone's to choose ("Alice", or "Аlice" with a Cyrillic А): the pages show
/// the unique username beside it, unless the two are the same name. app.js's <c>shownName</c> says
/// the same in notifications, announcements and the typing line.
/// </summary>
public static class Handle
{
    public static Html Beside(string displayName, string username) => string.Equals(displayName, username, StringComparison.OrdinalIgnoreCase)
        ? Html.Empty
        : Html.Of($""" <span class="handle">@{username}</span>""");
}

/// <summary>
/// api.md's <c>message</c>. Body is null when its ciphertext does not open (tampered or misplaced)
/// and in the tombstone of a deleted message (<see cref="Deleted"/>, no attachments). <see cref="EditedAt"/> is the
/// last edit's time (null when never edited, and in a tombstone).
/// </summary>
public sealed record MessageView(string Id, string ConversationId, MemberView Sender, string? Body, DateTime SentAt,
    [property: ApiValues(typeof(Crypto.EntropyModes), nameof(Crypto.EntropyModes.All))] string Entropy,
    IReadOnlyList<Files.AttachmentView> Attachments, bool Deleted = false, DateTime? EditedAt = null)
{
    /// <summary>Each emoji once with its count and whether the viewer is among those who chose it; empty in a tombstone.</summary>
    public IReadOnlyList<ReactionView> Reactions { get; init; } = [];
}

/// <summary>
/// api.md's <c>conversation.members[]</c> entry: <see cref="ReadUpTo"/> is the member's read mark
/// (null before they have read anything).
/// </summary>
public sealed record ConversationMemberView(string Username, string DisplayName, string? ReadUpTo)
{
    /// <summary>Has a live event stream open now, on any node (<see cref="Presence"/>).</summary>
    public bool Online { get; init; }
}

/// <summary>api.md's <c>conversation</c>. <see cref="Owner"/> is the group's owner (its creator until they leave), null for direct conversations.</summary>
public sealed record ConversationView(string Id, [property: ApiValues(typeof(Conversations), nameof(Conversations.Kinds))] string Kind, string? Title, string? Owner, IReadOnlyList<ConversationMemberView> Members,
    MessageView? LastMessage, long Unread);

public static class Ids
{
    public static string Of(long id) => id.ToString(CultureInfo.InvariantCulture);

    /// <summary>Ids are opaque strings to clients; anything that is not one of ours is simply not found.</summary>
    public static bool TryParse(string? text, out long id) =>
        long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out id) && id > 0;
}
