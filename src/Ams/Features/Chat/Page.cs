using Ams.Infrastructure;
using Ams.Infrastructure.Crypto;
using Ams.Infrastructure.Messaging;
using FastEndpoints;
using MySqlConnector;

namespace Ams.Features.Chat;

/// <summary>
/// The chat: conversation list with unread badges and previews, the open conversation with its
/// latest messages, and the composer. Live updates come over /events (wwwroot/app.js).
/// </summary>
public sealed class Page(MariaDb db, Envelope envelope, Presence presence) : EndpointWithoutRequest
{
    public override void Configure()
    {
        Get("/", "/c/{id:long}");
        AllowAnonymous();
    }

    public override async Task HandleAsync(CancellationToken ct)
    {
        if (await Users.SignedInOrToLoginAsync(HttpContext, db, ct) is not { } user) return;
        var routeId = Route<string>("id", isRequired: false);
        var (after, inbox, open) = await db.ReadUnlessHungAsync(async connection =>
        {
            // Read before the page's content: the stream replays from here, so whatever happens while
            // the page renders still arrives (app.js drops what the page already shows).
            var after = await EventLog.LatestAsync(connection, user.Id);
            var inbox = await Inbox.Sql.ListAsync(connection, envelope, user.Id, Inbox.Sql.DefaultLimit + 1) ?? [];
            // A conversation older than the list's first page opens all the same.
            var open = routeId is null ? null
                : inbox.FirstOrDefault(c => c.Id == routeId)
                  ?? (Ids.TryParse(routeId, out var id) ? await Conversations.FindAsync(connection, envelope, user.Id, id) : null);
            return (after, inbox, open);
        }, ct);
        if (routeId is not null && open is null)
        {
            await NotFound.ConversationAsync(HttpContext);
            return;
        }
        if (open is not null) open = await presence.ApplyAsync(open);
        var panel = open is null
            ? Html.Of($"""<p class="empty">Pick a conversation, or start a new one.</p>""")
            : Fragments.Panel(HttpContext, open, user.Username);
        // One h1 per page: the open conversation's title, or "Chats" when none is open.
        var listHeading = open is null ? Html.Raw("""<h1 class="list-heading">Chats</h1>""") : Html.Raw("""<h2 class="list-heading">Chats</h2>""");
        var main = Html.Of($"""
            <div class="chat{(open is null ? "" : " has-open")}" data-me="{user.Username}" data-after="{after}">
              <aside class="sidebar" aria-label="Conversations">
                <p class="whoami"><strong>{user.DisplayName}</strong> <span class="handle">@{user.Username}</span></p>
                <nav class="account" aria-label="Account">
                  <a href="/settings/2fa">Two-factor authentication: {(user.TwoFactorEnabled ? "on" : "off")}</a> · <a href="/settings">Settings</a> ·
                  <form method="post" action="/logout" class="inline">
                    {Layout.CsrfField(HttpContext)}
                    <button type="submit" class="link">Sign out</button>
                  </form>
                </nav>
                <button type="button" class="link" id="enable-notifications" hidden>Turn on desktop notifications</button>
                {listHeading}
                <ul id="conversations" aria-label="Conversations">{Fragments.ConversationList(inbox, Inbox.Sql.DefaultLimit, user.Username, open?.Id)}</ul>
                <div hx-get="/c/new" hx-trigger="load" hx-swap="outerHTML"></div>
                <div hx-get="/entropy/panel" hx-trigger="load" hx-swap="outerHTML"></div>
              </aside>
              <section id="panel" aria-label="Conversation">{panel}</section>
              <p id="connection" class="connection" role="status"></p>
              <div id="announcer" class="visually-hidden" aria-live="polite"></div>
              <datalist id="user-suggestions"></datalist>
              <dialog id="switcher" aria-label="Quick switcher">
                <input id="switcher-input" type="text" role="combobox" aria-label="Jump to a conversation" aria-autocomplete="list"
                       aria-expanded="true" aria-controls="switcher-list" autocomplete="off" placeholder="Jump to a conversation (Ctrl+K)">
                <ul id="switcher-list" role="listbox" aria-label="Conversations"></ul>
              </dialog>
            </div>
            """);
        await Send.StringAsync(Layout.Page(open is null ? "Chats" : Fragments.Title(open, user.Username), main, chat: true,
            skipTo: open is null ? "#conversations" : "#body"), 200, "text/html; charset=utf-8", ct);
    }
}
