using System.Globalization;
using Ams.Infrastructure.Files;

namespace Ams.Infrastructure.Messaging;

/// <summary>
/// A message as the browser shows it, wherever it appears (history pages, live events); the
/// viewer's own messages are marked. Attachments: raster images as previews served by the app
/// (<c>/attachments/{id}</c>), everything else as a card with name, size and type; both
/// download under the original name.
/// </summary>
public static class MessageFragment
{
    public static Html Of(MessageView m, string viewerUsername) => Html.Of($"""<li id="m-{m.Id}" class="message{(m.Sender.Username == viewerUsername ? " mine" : "")}{(m.Deleted ? " deleted" : "")}" data-conversation="{m.ConversationId}"><span class="sender">{m.Sender.DisplayName}</span> <time datetime="{m.SentAt.ToString("O", CultureInfo.InvariantCulture)}">{m.SentAt.ToString("HH:mm", CultureInfo.InvariantCulture)}</time>{Edited(m)}{Body(m)}{Attachments(m.Attachments)}{ReactionList(m)}</li>""");

    /// <summary>Each emoji with its count; the viewer's own are marked (app.js keeps them current from <c>event: reaction</c>).</summary>
    static Html ReactionList(MessageView m) => m.Reactions.Count == 0 ? Html.Empty
        : Html.Of($"""<ul class="reactions" aria-label="Reactions">{Html.Join(m.Reactions.Select(r => Html.Of($"""<li class="reaction{(r.Me ? " mine" : "")}" data-emoji="{r.Emoji}"><span class="emoji">{r.Emoji}</span> <span class="count">{r.Count}</span></li>"""))) }</ul>""");

    static Html Edited(MessageView m) => m.EditedAt is { } at && !m.Deleted
        ? Html.Of($""" <span class="edited" title="{at.ToString("O", CultureInfo.InvariantCulture)}">(edited)</span>""")
        : Html.Empty;

    static Html Body(MessageView m) =>
        m.Deleted ? Html.Of($"""<p class="muted">Message deleted</p>""")
        : m.Body is null ? Html.Of($"""<p>(this message cannot be decrypted)</p>""")
        : m.Body.Length == 0 && m.Attachments.Count > 0 ? Html.Empty
        : Html.Of($"""<p>{m.Body}</p>""");

    static Html Attachments(IReadOnlyList<AttachmentView> attachments) => attachments.Count == 0 ? Html.Empty
        : Html.Of($"""<ul class="attachments">{Html.Join(attachments.Select(Attachment))}</ul>""");

    static Html Attachment(AttachmentView a) => IsPreviewable(a.ContentType)
        ? Html.Of($"""<li class="attachment image"><a href="/attachments/{a.Id}?download=1" download="{a.Name}" title="Download {a.Name}"><img src="/attachments/{a.Id}" alt="{a.Name}" loading="lazy"></a></li>""")
        : Html.Of($"""<li class="attachment file"><a class="file-card" href="/attachments/{a.Id}" download="{a.Name}"><span class="file-name">{a.Name}</span> <span class="file-meta">{Size(a.Size)} · {a.ContentType}</span></a></li>""");

    static bool IsPreviewable(string contentType) => contentType is "image/png" or "image/jpeg" or "image/gif" or "image/webp";

    /// <summary>A human size: 512 B, 1.5 KiB, 25.0 MiB.</summary>
    public static string Size(long bytes) => bytes switch
    {
        < 1024 => string.Create(CultureInfo.InvariantCulture, $"{bytes} B"),
        < 1024 * 1024 => string.Create(CultureInfo.InvariantCulture, $"{bytes / 1024.0:0.0} KiB"),
        _ => string.Create(CultureInfo.InvariantCulture, $"{bytes / (1024.0 * 1024):0.0} MiB"),
    };
}
