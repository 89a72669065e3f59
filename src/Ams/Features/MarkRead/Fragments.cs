using Ams.Infrastructure;

namespace Ams.Features.MarkRead;

/// <summary>A read receipt as the browser shows it.</summary>
static class Fragments
{
    public static Html Receipt(ReadView r) => Html.Of(
        $"""<span class="receipt" data-conversation="{r.ConversationId}" data-username="{r.Username}" data-up-to="{r.UpTo}">Read by {r.Username}</span>""");
}
