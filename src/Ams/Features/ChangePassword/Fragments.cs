using Ams.Infrastructure;

namespace Ams.Features.ChangePassword;

static class Fragments
{
    public static Html Form(HttpContext http, IEnumerable<string> errors, bool changed = false) => Html.Of($"""
        <section id="password">
          <h2>Password</h2>
          {(changed ? Html.Raw("""<p class="notice" role="status">Password changed. Every other session and token has ended.</p>""") : Html.Empty)}
          {Layout.Errors(errors)}
          <form method="post" action="/settings/password" hx-post="/settings/password" hx-target="#password" hx-swap="outerHTML">
            {Layout.CsrfField(http)}
            <label for="current-password">Current password</label>
            <input id="current-password" name="currentPassword" type="password" autocomplete="current-password" required maxlength="1024">
            <label for="new-password">New password (12–128 characters)</label>
            <input id="new-password" name="newPassword" type="password" autocomplete="new-password" required minlength="12" maxlength="128">
            <button type="submit">Change password</button>
          </form>
        </section>
        """);
}
