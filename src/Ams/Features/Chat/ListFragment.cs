using Ams.Infrastructure;
using Ams.Infrastructure.Crypto;
using Ams.Infrastructure.Messaging;
using FastEndpoints;
using MySqlConnector;

namespace Ams.Features.Chat;

/// <summary>The conversation list alone: app.js refreshes it when an event changes order, previews or unread counts.</summary>
public sealed class ListFragment(MariaDb db, Envelope envelope) : EndpointWithoutRequest
{
    public override void Configure()
    {
        Get("/c/list");
    }

    public override async Task HandleAsync(CancellationToken ct)
    {
        // ?before= for the next page (the list's "Older conversations"), ?limit= to refresh as many as are shown.
        var (limit, before, errors) = Inbox.Sql.PageOf(HttpContext.Request.Query);
        foreach (var error in errors) AddError(error);
        ThrowIfAnyErrors();
        var user = (await Users.FindByIdAsync(db, User.UserId(), ct))!;
        // A list whose last conversation is gone (left meanwhile) just shows no older ones.
        var page = await db.ReadUnlessHungAsync(connection => Inbox.Sql.ListAsync(connection, envelope, user.Id, limit + 1, before), ct) ?? [];
        var active = HttpContext.Request.Query["active"].ToString();
        await Send.StringAsync(Fragments.ConversationList(page, limit, user.Username, active).Value, 200, "text/html; charset=utf-8", ct);
    }
}
