using Ams.Infrastructure;
using Ams.Infrastructure.Crypto;
using Ams.Infrastructure.Messaging;
using FastEndpoints;
using MySqlConnector;

namespace Ams.Features.History;

/// <summary>
/// The browser's "load older" step: the previous page as message fragments, after a new button
/// for the one before (app.js fetches it: one page per scroll to the top, keeping the reader's place).
/// </summary>
public sealed class OlderFragment(MariaDb db, Envelope envelope) : EndpointWithoutRequest
{
    public const int PageSize = 50;

    public override void Configure()
    {
        Get("/c/{id}/older");
    }

    public override async Task HandleAsync(CancellationToken ct)
    {
        var user = (await Users.FindByIdAsync(db, User.UserId(), ct))!;
        var before = long.MaxValue;
        if (!Ids.TryParse(Route<string>("id"), out var id)
            || HttpContext.Request.Query.ContainsKey("before") && !Ids.TryParse(HttpContext.Request.Query["before"], out before)
            || await db.ReadUnlessHungAsync(connection => Sql.PageAsync(connection, envelope, user.Id, id, before, PageSize), ct) is not { } page)
        {
            await NotFound.ConversationAsync(HttpContext);
            return;
        }
        var html = new System.Text.StringBuilder();
        if (page.More)
            html.Append(Html.Of($"""<li id="older" data-older="/c/{Ids.Of(id)}/older?before={page.Messages[0].Id}"><button type="button">Load older messages</button></li>"""));
        foreach (var view in page.Messages)
            html.Append(MessageFragment.Of(view, user.Username).Value);
        await Send.StringAsync(html.ToString(), 200, "text/html; charset=utf-8", ct);
    }
}
