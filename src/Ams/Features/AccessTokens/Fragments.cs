using Ams.Infrastructure;

namespace Ams.Features.AccessTokens;

static class Fragments
{
    public static Html Section(HttpContext http, IReadOnlyList<AccessTokenRow> tokens, CreateResponse? created, IEnumerable<string> errors) => Html.Of($"""
        <section id="tokens">
          <h2>Personal access tokens</h2>
          <p>For scripts and bots: a bearer token that does not end when idle and cannot change these settings.</p>
          {(created is null ? Html.Empty : Html.Of($"""
            <div class="notice" role="status">
              <p>Your new token <strong>{created.Name}</strong>. Copy it now: it is not shown again.</p>
              <pre class="token">{created.Token}</pre>
            </div>
            """))}
          {Layout.Errors(errors)}
          <ul class="tokens">
          {Html.Join(tokens.Select(t => Html.Of($"""
            <li>
              <span class="name">{t.Name}</span>
              <span class="meta">created {Stamp(t.CreatedAt)} · {(t.ExpiresAt is { } e ? "expires " + Stamp(e) : "never expires")} · {(t.LastUsedAt is { } u ? "last used " + Stamp(u) : "never used")}</span>
              <form method="post" action="/settings/tokens/{CreateEndpoint.Id(t.Id)}/revoke" hx-post="/settings/tokens/{CreateEndpoint.Id(t.Id)}/revoke">
                {Layout.CsrfField(http)}
                <button type="submit">Revoke</button>
              </form>
            </li>
            """)))}
          </ul>
          <form method="post" action="/settings/tokens" hx-post="/settings/tokens" hx-target="#tokens" hx-swap="outerHTML">
            {Layout.CsrfField(http)}
            <label for="token-name">Name</label>
            <input id="token-name" name="name" required maxlength="64">
            <label for="token-days">Expires in days (1–365; a token that never expires is made with the API)</label>
            <input id="token-days" name="expiresInDays" type="number" min="1" max="365" value="90" required>
            <label for="token-password">Your password</label>
            <input id="token-password" name="password" type="password" autocomplete="current-password" required maxlength="1024">
            <button type="submit">Create token</button>
          </form>
        </section>
        """);

    static string Stamp(DateTime at) => at.ToString("yyyy-MM-dd HH:mm 'UTC'", System.Globalization.CultureInfo.InvariantCulture);
}
