using System.Globalization;
using Ams.Infrastructure.Files;

namespace Ams.Infrastructure.Messaging;

/// <summary>
/// A message as the browser shows it, wherever it appears (history pages, live events); the
/// viewer's own messages are marked. Attachments: raster images as previews served by the app
/// (<c>/attachments/{id}</c>), everything else as a card with name, size and type; both
/// download under the original name.
/// </summary>
public static partial class MessageFragment
{
    public static Html Of(MessageView m, string viewerUsername)
    {
        var mine = m.Sender.Username == viewerUsername;
        return Html.Of($"""<li id="m-{m.Id}" class="message{(mine ? " mine" : "")}{(m.Deleted ? " deleted" : "")}" data-conversation="{m.ConversationId}" data-sender="{m.Sender.Username}" data-sender-name="{m.Sender.DisplayName}"><span class="sender">{m.Sender.DisplayName}</span>{Handle.Beside(m.Sender.DisplayName, m.Sender.Username)} <time datetime="{m.SentAt.ToString("O", CultureInfo.InvariantCulture)}">{m.SentAt.ToString("yyyy-MM-dd HH:mm", CultureInfo.InvariantCulture)} UTC</time>{Edited(m)}{Body(m)}{Attachments(m.Attachments)}{ReactionList(m)}{Actions(m, mine)}</li>""");
    }

    /// <summary>React for everyone; edit and delete for the sender (the API refuses anyone else anyway).</summary>
    static Html Actions(MessageView m, bool mine) => m.Deleted ? Html.Empty : Html.Of($"""<span class="actions"><button type="button" class="react" aria-label="React to {m.Sender.DisplayName}'s message" aria-haspopup="true">☺+</button>{(mine ? Html.Raw("""<button type="button" class="edit">Edit</button><button type="button" class="delete">Delete</button>""") : Html.Empty)}</span>""");

    /// <summary>Each emoji with its count; the viewer's own are marked (app.js keeps them current from <c>event: reaction</c>).</summary>
    static Html ReactionList(MessageView m) => m.Reactions.Count == 0 ? Html.Empty
        : Html.Of($"""<ul class="reactions" aria-label="Reactions">{Html.Join(m.Reactions.Select(r => Html.Of($"""<li class="reaction{(r.Me ? " mine" : "")}" data-emoji="{r.Emoji}"><button type="button" aria-pressed="{(r.Me ? "true" : "false")}"><span class="emoji">{r.Emoji}</span> <span class="count">{r.Count}</span></button></li>"""))) }</ul>""");

    static Html Edited(MessageView m) => m.EditedAt is { } at && !m.Deleted
        ? Html.Of($""" <span class="edited" title="{at.ToString("O", CultureInfo.InvariantCulture)}">(edited)</span>""")
        : Html.Empty;

    static Html Body(MessageView m) =>
        m.Deleted ? Html.Of($"""<p class="muted">Message deleted</p>""")
        : m.Body is null ? Html.Of($"""<p>(this message cannot be decrypted)</p>""")
        : m.Body.Length == 0 && m.Attachments.Count > 0 ? Html.Empty
        // dir="auto": a body's own direction, isolated, so a right-to-left override in it (U+202E)
        // cannot reorder what follows it on the page.
        : Html.Of($"""<p class="body" dir="auto">{Linked(m.Body)}</p>""");

    /// <summary>
    /// The body with its http and https addresses as links (every other scheme stays text), each
    /// part HTML-encoded; line breaks stay (CSS pre-wrap).
    /// </summary>
    public static Html Linked(string body)
    {
        var parts = new List<Html>();
        var at = 0;
        foreach (System.Text.RegularExpressions.Match link in Links().Matches(body))
        {
            var url = WithoutTrailingPunctuation(link.Value);
            if (url.Length <= "https://".Length) continue;
            parts.Add(Html.Of($"{body[at..link.Index]}"));
            parts.Add(Html.Of($"""<a href="{url}" dir="ltr" rel="noopener noreferrer" target="_blank">{url}</a>"""));
            at = link.Index + url.Length;
        }
        parts.Add(Html.Of($"{body[at..]}"));
        return Html.Join(parts);
    }

    /// <summary>
    /// A sentence's punctuation after an address is not part of it, nor a closing bracket that
    /// closes around it ("(see https://…)"); one that closes a bracket inside it is
    /// ("https://en.wikipedia.org/wiki/Mercury_(planet)"). The brackets are counted once: a body
    /// of one address and thousands of ')' is rendered for every page and stream that shows it.
    /// </summary>
    static string WithoutTrailingPunctuation(string url)
    {
        int parens = 0, squares = 0;   // opened minus closed
        foreach (var c in url)
            switch (c)
            {
                case '(': parens++; break;
                case ')': parens--; break;
                case '[': squares++; break;
                case ']': squares--; break;
            }
        var end = url.Length;
        while (end > 0 && url[end - 1] is '.' or ',' or ';' or ':' or '!' or '?' or ')' or ']' or '\'' or '"')
        {
            if (url[end - 1] == ')' && parens++ >= 0) break;
            if (url[end - 1] == ']' && squares++ >= 0) break;
            end--;
        }
        return url[..end];
    }

    // An address ends at a bidirectional control: one inside would make the link's text read as
    // another address than the one it opens.
    [System.Text.RegularExpressions.GeneratedRegex(@"\bhttps?://[^\s<>""\u202A-\u202E\u2066-\u2069]+", System.Text.RegularExpressions.RegexOptions.IgnoreCase)]
    private static partial System.Text.RegularExpressions.Regex Links();

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
