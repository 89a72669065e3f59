using Ams.Infrastructure;
using Ams.Infrastructure.Messaging;

namespace Ams.Features.Chat;

static class Fragments
{
    public static Html ConversationList(IEnumerable<ConversationView> inbox, string me, string? activeId) =>
        Html.Join(inbox.Select(c => Html.Of($"""
            <li id="c-{c.Id}" data-conversation="{c.Id}"{(c.Id == activeId ? Html.Raw(" class=\"active\" aria-current=\"page\"") : Html.Empty)}>
              <a href="/c/{c.Id}">
                <span class="title">{Title(c, me)}</span>
                {(c.Unread > 0 ? Html.Of($"""<span class="badge" aria-label="{c.Unread} unread">{c.Unread}</span>""") : Html.Empty)}
                <span class="preview">{(c.LastMessage is { } m ? $"{m.Sender.DisplayName}: {Preview(m)}" : "No messages yet")}</span>
              </a>
            </li>
            """)));

    static string Preview(MessageView m) =>
        m.Deleted ? "(deleted)"
        : m.Body is null ? "(cannot be decrypted)"
        : m.Body.Length == 0 && m.Attachments.Count > 0 ? "📎 " + string.Join(", ", m.Attachments.Select(a => a.Name))
        : m.Body;

    public static string Title(ConversationView c, string me) =>
        c.Title ?? string.Join(", ", c.Members.Where(m => m.Username != me).Select(m => m.DisplayName).DefaultIfEmpty(me));

    // The history arrives through History's "older" fragment, loaded at once and then on scroll.
    public static Html Panel(HttpContext http, ConversationView c, string me) => Html.Of($"""
        <header class="panel-header">
          <a class="back" href="/">← Chats</a>
          <h2>{Title(c, me)}</h2>
          <p class="members">{string.Join(", ", c.Members.Select(m => "@" + m.Username))}</p>
          <p class="receipt" id="receipt" aria-live="polite"></p>
        </header>
        <ol id="messages" data-conversation="{c.Id}" aria-live="polite" aria-label="Messages">
          <li id="older" hx-get="/c/{c.Id}/older" hx-trigger="load" hx-target="#older" hx-swap="outerHTML"><span class="muted">Loading…</span></li>
        </ol>
        <form id="composer" method="post" action="/c/{c.Id}/send" data-conversation="{c.Id}">
          {Layout.CsrfField(http)}
          <label for="body">Message <small>(Enter sends, Shift+Enter for a new line)</small></label>
          <textarea id="body" name="body" rows="2" maxlength="4000"></textarea>
          <ul id="pending" class="pending" aria-label="Attachments" aria-live="polite"></ul>
          <div class="composer-actions">
            <label class="attach" for="attach-input">Attach files <small>(or drop or paste them)</small></label>
            <input type="file" id="attach-input" class="visually-hidden" multiple>
            <button type="submit">Send</button>
          </div>
        </form>
        """);
}
