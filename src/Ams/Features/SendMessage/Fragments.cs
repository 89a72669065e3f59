using System.Globalization;
using Ams.Infrastructure;
using Ams.Infrastructure.Messaging;

namespace Ams.Features.SendMessage;

/// <summary>A message as the browser shows it; the sender's own messages are marked for the viewer.</summary>
public sealed class Fragments : IEventFragment
{
    public string Kind => EventKinds.Message;

    public string Render(LiveEvent live, string viewerUsername) => Message(live.Message!, viewerUsername).Value;

    public static Html Message(MessageView m, string viewerUsername) => Html.Of($"""<li id="m-{m.Id}" class="message{(m.Sender.Username == viewerUsername ? " mine" : "")}" data-conversation="{m.ConversationId}"><span class="sender">{m.Sender.DisplayName}</span> <time datetime="{m.SentAt.ToString("O", CultureInfo.InvariantCulture)}">{m.SentAt.ToString("HH:mm", CultureInfo.InvariantCulture)}</time><p>{m.Body ?? "(this message cannot be decrypted)"}</p></li>""");
}
