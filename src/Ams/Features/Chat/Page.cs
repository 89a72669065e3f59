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
public sealed class Page(MySqlDataSource db, Envelope envelope) : EndpointWithoutRequest
{
    public override void Configure()
    {
        Get("/", "/c/{id:long}");
        AllowAnonymous();
    }

    public override async Task HandleAsync(CancellationToken ct)
    {
        if (await Users.SignedInOrToLoginAsync(HttpContext, db, ct) is not { } user) return;
        await using var connection = await db.OpenConnectionAsync(ct);
        // Read before the page's content: the stream replays from here, so whatever happens while
        // the page renders still arrives (app.js drops what the page already shows).
        var after = await EventLog.LatestAsync(connection, user.Id);
        var inbox = await Inbox.Sql.ListAsync(connection, envelope, user.Id);
        var routeId = Route<string>("id", isRequired: false);
        var open = routeId is null ? null : inbox.FirstOrDefault(c => c.Id == routeId);
        if (routeId is not null && open is null)
        {
            await NotFound.ConversationAsync(HttpContext);
            return;
        }
        var panel = open is null
            ? Html.Of($"""<p class="empty">Pick a conversation, or start a new one.</p>""")
            : Fragments.Panel(HttpContext, open, user.Username);
        var main = Html.Of($"""
            <div class="chat{(open is null ? "" : " has-open")}" data-me="{user.Username}" data-after="{after}">
              <aside class="sidebar" aria-label="Conversations">
                <p class="whoami"><strong>{user.DisplayName}</strong> @{user.Username} · <a href="/settings/2fa">Two-factor authentication: {(user.TwoFactorEnabled ? "on" : "off")}</a> · <a href="/settings">Settings</a></p>
                <form method="post" action="/logout" class="inline">
                  {Layout.CsrfField(HttpContext)}
                  <button type="submit" class="link">Sign out</button>
                </form>
                <ul id="conversations">{Fragments.ConversationList(inbox, user.Username, open?.Id)}</ul>
                <div hx-get="/c/new" hx-trigger="load" hx-swap="outerHTML"></div>
                <div hx-get="/entropy/panel" hx-trigger="load" hx-swap="outerHTML"></div>
              </aside>
              <section id="panel" aria-label="Conversation">{panel}</section>
            </div>
            """);
        await Send.StringAsync(Layout.Page(open is null ? "Chats" : Fragments.Title(open, user.Username), main, chat: true),
            200, "text/html; charset=utf-8", ct);
    }
}
