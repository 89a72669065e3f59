using Ams.Infrastructure;

namespace Ams.Features.CreateConversation;

static class Fragments
{
    /// <param name="request">What was typed, kept after a refusal.</param>
    public static Html Form(HttpContext http, IEnumerable<string> errors, Request? request = null) => Html.Of($"""
        <form id="new-chat" method="post" action="/c/new" hx-post="/c/new" hx-target="this" hx-swap="outerHTML">
          <h2>New chat</h2>
          {Layout.Errors(errors)}
          {Layout.CsrfField(http)}
          <label for="new-chat-members">With (usernames, comma-separated)</label>
          <input id="new-chat-members" name="members" required autocomplete="off" list="user-suggestions" data-autocomplete="users" value="{string.Join(", ", request?.Members ?? [])}">
          <label for="title">Group title <small>(optional)</small></label>
          <input id="title" name="title" maxlength="100" value="{request?.Title ?? ""}">
          <button type="submit">Start</button>
        </form>
        """);
}
