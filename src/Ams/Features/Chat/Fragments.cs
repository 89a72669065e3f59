using Ams.Infrastructure;
using Ams.Infrastructure.Messaging;

namespace Ams.Features.Chat;

static class Fragments
{
    // aria-current sits on the link itself: that is what a screen reader lands on.
    /// <summary>
    /// One page of the list; <paramref name="page"/> holds one row more than <paramref name="limit"/>
    /// when there are older conversations, and then the page ends in a button that loads them.
    /// </summary>
    public static Html ConversationList(List<ConversationView> page, int limit, string me, string? activeId) => Html.Of($"""
        {ConversationItems(page.Take(limit), me, activeId)}{(page.Count > limit ? Html.Of($"""
        <li class="more"><button type="button" data-before="{page[limit - 1].Id}">Older conversations</button></li>
        """) : Html.Empty)}
        """);

    static Html ConversationItems(IEnumerable<ConversationView> inbox, string me, string? activeId) =>
        Html.Join(inbox.Select(c => Html.Of($"""
            <li id="c-{c.Id}" data-conversation="{c.Id}"{(c.Id == activeId ? Html.Raw(" class=\"active\"") : Html.Empty)}>
              <a href="/c/{c.Id}"{(c.Id == activeId ? Html.Raw(" aria-current=\"page\"") : Html.Empty)}>
                <span class="title">{Title(c, me)}</span>
                {(c.Unread > 0 ? Html.Of($"""<span class="badge" data-unread="{c.Unread}">{c.Unread}</span><span class="visually-hidden"> unread</span>""") : Html.Empty)}
                <span class="preview">{(c.LastMessage is { } m ? Html.Of($"{m.Sender.DisplayName}{Handle.Beside(m.Sender.DisplayName, m.Sender.Username)}: <bdi>{Preview(m)}</bdi>") : Html.Of($"No messages yet"))}</span>
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

    /// <summary>
    /// The members with their online state and read marks (app.js names them in "Seen by …" and
    /// "… is typing", and keeps both current from the live events).
    /// </summary>
    static Html Members(ConversationView c, string me) => Html.Join(c.Members.Select(m => Html.Of($"""
        <li data-username="{m.Username}" data-name="{m.DisplayName}" data-read-up-to="{m.ReadUpTo ?? ""}" class="{(m.Online ? "online" : "offline")}"><span class="dot" aria-hidden="true"></span>{m.DisplayName}{Handle.Beside(m.DisplayName, m.Username)}<span class="visually-hidden">{(m.Online ? " (online)" : "")}</span></li>
        """)));

    /// <summary>Rename (the owner), add, remove (the owner), leave: each a call of the JSON API by app.js.</summary>
    static Html GroupSettings(HttpContext http, ConversationView c, string me) => c.Kind != Conversations.Group ? Html.Empty : Html.Of($"""
        <details class="group-settings">
          <summary>Group settings</summary>
          {(c.Owner == me ? Html.Of($"""
          <form class="rename" data-conversation="{c.Id}">
            <label for="rename-title">Group name</label>
            <input id="rename-title" name="title" maxlength="100" required value="{c.Title}">
            <button type="submit">Rename</button>
          </form>
          """) : Html.Empty)}
          <form class="add-member" data-conversation="{c.Id}">
            <label for="add-username">Add member</label>
            <input id="add-username" name="username" required autocomplete="off" list="user-suggestions" data-autocomplete="users">
            <button type="submit">Add</button>
          </form>
          {(c.Owner == me ? Html.Of($"""<ul class="manage-members" aria-label="Remove members">{Html.Join(c.Members.Where(m => m.Username != me).Select(m => Html.Of($"""<li>{m.DisplayName}{Handle.Beside(m.DisplayName, m.Username)} <button type="button" class="link remove-member" data-username="{m.Username}">Remove<span class="visually-hidden"> {m.DisplayName}</span></button></li>""")))}</ul>""") : Html.Empty)}
          <button type="button" class="leave" data-conversation="{c.Id}">Leave group</button>
          <p class="errors" role="alert" id="group-errors"></p>
        </details>
        """);

    // The history arrives through History's "older" fragment, loaded by app.js at once and then
    // one page per scroll to the top. Only new messages are announced (#announcer), not history.
    // The composer's maxlength counts UTF-16 units, the server characters: twice the limit lets
    // 4000 emoji through, and the server's 400 says when a text is too long.
    public static Html Panel(HttpContext http, ConversationView c, string me) => Html.Of($"""
        <header class="panel-header">
          <a class="back" href="/">← Chats</a>
          <h1 id="panel-title">{Title(c, me)}</h1>
          <ul class="members" id="members" aria-label="Members" data-kind="{c.Kind}">{Members(c, me)}</ul>
          {GroupSettings(http, c, me)}
        </header>
        <ol id="messages" data-conversation="{c.Id}" tabindex="0" aria-labelledby="panel-title">
          <li id="older" data-older="/c/{c.Id}/older"><span class="muted">Loading…</span></li>
        </ol>
        <div class="under-messages">
          <p class="typing" id="typing"></p>
          <p class="receipt" id="receipt"></p>
          <button type="button" id="jump-new" class="jump-new" hidden>New messages ↓</button>
        </div>
        <form id="composer" method="post" action="/c/{c.Id}/send" data-conversation="{c.Id}">
          {Layout.CsrfField(http)}
          <label for="body" class="visually-hidden">Message</label>
          <div class="composer-row">
            <label class="attach" for="attach-input" title="Attach files (or drop or paste them)"><span aria-hidden="true">+</span><span class="visually-hidden">Attach files</span></label>
            <input type="file" id="attach-input" class="visually-hidden" multiple>
            <textarea id="body" name="body" rows="1" maxlength="{2 * SendMessage.Validator.MaxBodyLength}" placeholder="Message" aria-describedby="composer-hint"></textarea>
            <button type="submit" class="send">Send</button>
          </div>
          <small id="composer-hint" class="hint">Enter sends, Shift+Enter for a new line, ↑ edits your last message</small>
          <ul id="pending" class="pending" aria-label="Attachments" aria-live="polite"></ul>
        </form>
        """);
}
