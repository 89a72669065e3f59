using Ams.Infrastructure;
using Ams.Infrastructure.Messaging;

namespace Ams.Features.MarkRead;

/// <summary>A read receipt as the browser shows it.</summary>
public sealed class Fragments : IEventFragment
{
    public string Kind => EventKinds.Read;

    public string Render(LiveEvent live, string viewerUsername) => Receipt(live.Read!).Value;

    public static Html Receipt(ReadView r) => Html.Of(
        $"""<span class="receipt" data-conversation="{r.ConversationId}" data-username="{r.Username}" data-up-to="{r.UpTo}">Read by {r.Username}</span>""");
}
