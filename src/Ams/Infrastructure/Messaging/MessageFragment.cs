using System.Globalization;

namespace Ams.Infrastructure.Messaging;

/// <summary>
/// A message as the browser shows it, wherever it appears (history pages, live events); the
/// viewer's own messages are marked.
/// </summary>
public static class MessageFragment
{
    public static Html Of(MessageView m, string viewerUsername) => Html.Of($"""<li id="m-{m.Id}" class="message{(m.Sender.Username == viewerUsername ? " mine" : "")}" data-conversation="{m.ConversationId}"><span class="sender">{m.Sender.DisplayName}</span> <time datetime="{m.SentAt.ToString("O", CultureInfo.InvariantCulture)}">{m.SentAt.ToString("HH:mm", CultureInfo.InvariantCulture)}</time><p>{m.Body ?? "(this message cannot be decrypted)"}</p></li>""");
}
