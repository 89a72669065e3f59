using Ams.Infrastructure;
using FastEndpoints;
using MySqlConnector;

namespace Ams.Features.Home;

/// <summary>The signed-in landing page (the chat arrives with the messaging slices).</summary>
public sealed class Page(MySqlDataSource db) : EndpointWithoutRequest
{
    public override void Configure()
    {
        Get("/");
        AllowAnonymous();
    }

    public override async Task HandleAsync(CancellationToken ct)
    {
        var user = User.Identity?.IsAuthenticated == true ? await Users.FindByIdAsync(db, User.UserId(), ct) : null;
        if (user is null)
        {
            await Send.RedirectAsync("/login");
            return;
        }
        var main = Html.Of($"""
            <section>
              <h1>Welcome, {user.DisplayName}</h1>
              <p>Signed in as <strong>@{user.Username}</strong>.</p>
              <p><a href="/settings/2fa">Two-factor authentication: {(user.TwoFactorEnabled ? "on" : "off")}</a></p>
              <form method="post" action="/logout" hx-post="/logout">
                {Layout.CsrfField(HttpContext)}
                <button type="submit">Sign out</button>
              </form>
            </section>
            """);
        await Send.StringAsync(Layout.Page("Home", main), 200, "text/html; charset=utf-8", ct);
    }
}
