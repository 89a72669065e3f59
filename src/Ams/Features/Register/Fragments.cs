using Ams.Infrastructure;

namespace Ams.Features.Register;

static class Fragments
{
    public static Html Form(HttpContext http, Request? values, IEnumerable<string> errors, RegistrationMode mode) => mode == RegistrationMode.Closed
        ? Html.Of($"""
            <section id="register">
              <h1>Registration is closed</h1>
              <p>This server does not take new accounts. Ask its administrator for one.</p>
              <p>Already registered? <a href="/login">Sign in</a></p>
            </section>
            """)
        : Html.Of($"""
        <form id="register" method="post" action="/register" hx-post="/register" hx-target="this" hx-swap="outerHTML">
          <h1>Create an account</h1>
          {Layout.Errors(errors)}
          {Layout.CsrfField(http)}
          <label for="username">Username</label>
          <input id="username" name="username" autocomplete="username" required minlength="3" maxlength="32" pattern="[A-Za-z0-9_.\-]+"
                 aria-describedby="username-hint" title="3–32 letters, digits, dots, dashes or underscores"
                 data-pattern-message="Use 3–32 letters (A–Z), digits, dots, dashes or underscores, without spaces." value="{values?.Username}">
          <small id="username-hint" class="hint-line">3–32 letters (A–Z), digits, dots, dashes or underscores; no spaces.</small>
          <label for="displayName">Display name <small>(optional)</small></label>
          <input id="displayName" name="displayName" maxlength="64" value="{values?.DisplayName}">
          <label for="password">Password <small>(12–128 characters)</small></label>
          <input id="password" name="password" type="password" autocomplete="new-password" required minlength="12" maxlength="128">
          {(mode == RegistrationMode.Invite ? InviteField(values) : Html.Empty)}
          <button type="submit">Register</button>
          <p>Already registered? <a href="/login">Sign in</a></p>
        </form>
        """);

    static Html InviteField(Request? values) => Html.Of($"""
        <label for="invite">Invite code</label>
        <input id="invite" name="invite" required autocomplete="off" value="{values?.Invite}">
        """);
}
