using Ams.Infrastructure;

namespace Ams.Features.SecurityHistory;

static class Fragments
{
    public static Html List(IReadOnlyList<SecurityEventView> events) => Html.Of($"""
        <section id="security-history">
          <h2>Security history</h2>
          {(events.Count == 0 ? Html.Raw("<p>Nothing yet.</p>") : Html.Empty)}
          <ul class="security-events">
          {Html.Join(events.Select(e => Html.Of($"""
            <li><time>{e.At.ToString("yyyy-MM-dd HH:mm:ss 'UTC'", System.Globalization.CultureInfo.InvariantCulture)}</time> <strong>{e.Kind}</strong> <span class="meta">{(e.Address.Length > 0 ? Html.Of($"{e.Address} · ") : Html.Empty)}{e.UserAgent}</span></li>
            """)))}
          </ul>
        </section>
        """);
}
