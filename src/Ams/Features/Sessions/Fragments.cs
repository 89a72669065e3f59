using Ams.Infrastructure;

namespace Ams.Features.Sessions;

static class Fragments
{
    public static Html List(HttpContext http, IReadOnlyList<SessionView> sessions) => Html.Of($"""
        <section id="sessions">
          <h2>Sessions</h2>
          <ul class="sessions">
          {Html.Join(sessions.Select(s => Html.Of($"""
            <li>
              <span class="device">{(s.UserAgent.Length > 0 ? s.UserAgent : "Unknown device")}</span>
              <span class="meta">{s.Address} · signed in {Stamp(s.CreatedAt)} · last seen {Stamp(s.LastSeenAt)}{(s.Current ? Html.Raw(" · <strong>this session</strong>") : Html.Empty)}</span>
              {(s.Current ? Html.Empty : Html.Of($"""
                <form method="post" action="/settings/sessions/{s.Id}/revoke" hx-post="/settings/sessions/{s.Id}/revoke">
                  {Layout.CsrfField(http)}
                  <button type="submit">End</button>
                </form>
                """))}
            </li>
            """)))}
          </ul>
          <form method="post" action="/settings/sessions/revoke-others" hx-post="/settings/sessions/revoke-others">
            {Layout.CsrfField(http)}
            <button type="submit">End all other sessions</button>
          </form>
        </section>
        """);

    static string Stamp(DateTimeOffset at) => at.UtcDateTime.ToString("yyyy-MM-dd HH:mm 'UTC'", System.Globalization.CultureInfo.InvariantCulture);
}
