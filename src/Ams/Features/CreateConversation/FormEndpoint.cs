using Ams.Infrastructure;
using FastEndpoints;
using MySqlConnector;

namespace Ams.Features.CreateConversation;

/// <summary>The browser's "new chat" form: usernames separated by commas, an optional group title.</summary>
public sealed class FormEndpoint(MySqlDataSource db, TimeProvider time) : EndpointWithoutRequest
{
    public override void Configure()
    {
        Post("/c/new");
        AllowFormData(urlEncoded: true);
    }

    public override async Task HandleAsync(CancellationToken ct)
    {
        var form = await HttpContext.Request.ReadFormAsync(ct);
        var req = new Request
        {
            Members = form["members"].ToString().Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).ToList(),
            Title = string.IsNullOrWhiteSpace(form["title"]) ? null : form["title"].ToString().Trim(),
        };
        var result = await new Validator().ValidateAsync(req, ct);
        if (!result.IsValid)
        {
            await Reply(result.Errors.Select(e => e.ErrorMessage), 422, ct);
            return;
        }
        await using var connection = await db.OpenConnectionAsync(ct);
        switch (await Endpoint.CreateAsync(connection, User.UserId(), req, time))
        {
            case (_, _, { } unknown):
                await Reply([$"There is no user '{unknown}'."], 404, ct);
                break;
            case (null, _, _):
                await Reply(["Name at least one member besides yourself."], 422, ct);
                break;
            case ({ } id, _, _):
                await Layout.RedirectAfterPostAsync(HttpContext, $"/c/{id}");
                break;
        }
    }

    Task Reply(IEnumerable<string> errors, int status, CancellationToken ct) =>
        Send.StringAsync(Layout.PageOrFragment(HttpContext, "New chat", NewChatForm(HttpContext, errors)), status, "text/html; charset=utf-8", ct);

    internal static Html NewChatForm(HttpContext http, IEnumerable<string> errors) => Html.Of($"""
        <form id="new-chat" method="post" action="/c/new" hx-post="/c/new" hx-target="this" hx-swap="outerHTML">
          <h2>New chat</h2>
          {Layout.Errors(errors)}
          {Layout.CsrfField(http)}
          <label for="members">With (usernames, comma-separated)</label>
          <input id="members" name="members" required autocomplete="off">
          <label for="title">Group title <small>(optional)</small></label>
          <input id="title" name="title" maxlength="100">
          <button type="submit">Start</button>
        </form>
        """);
}

/// <summary>The empty "new chat" form, which the chat page loads into its sidebar.</summary>
public sealed class FormPage : EndpointWithoutRequest
{
    public override void Configure()
    {
        Get("/c/new");
    }

    public override Task HandleAsync(CancellationToken ct) =>
        Send.StringAsync(Layout.PageOrFragment(HttpContext, "New chat", FormEndpoint.NewChatForm(HttpContext, [])), 200, "text/html; charset=utf-8", ct);
}
