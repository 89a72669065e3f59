using Ams.Features.Register;
using Ams.Infrastructure;

namespace Ams.Features.Login;

static class Fragments
{
    // Closed registration has no page to send a newcomer to: administrators create accounts.
    public static Html Form(HttpContext http, string? username, IEnumerable<string> errors, RegistrationMode registration, bool registered = false) => Html.Of($"""
        <form id="login" method="post" action="/login" hx-post="/login" hx-target="this" hx-swap="outerHTML">
          <h1>Sign in</h1>
          {(registered ? Html.Raw("""<p class="notice" role="status">Account created. Sign in to continue.</p>""") : Html.Empty)}
          {Layout.Errors(errors)}
          {Layout.CsrfField(http)}
          <label for="username">Username</label>
          <input id="username" name="username" autocomplete="username" required maxlength="64" value="{username}">
          <label for="password">Password</label>
          <input id="password" name="password" type="password" autocomplete="current-password" required maxlength="1024">
          <button type="submit">Sign in</button>
          {(registration == RegistrationMode.Closed ? Html.Empty : Html.Raw("""<p>New here? <a href="/register">Create an account</a></p>"""))}
        </form>
        """);
}
