using Ams.Infrastructure;

namespace Ams.Features.TwoFactor;

static class Fragments
{
    public static Html SecondStep(HttpContext http, IEnumerable<string> errors) => Html.Of($"""
        <form id="second-step" method="post" action="/login/2fa" hx-post="/login/2fa" hx-target="this" hx-swap="outerHTML">
          <h1>Two-factor authentication</h1>
          {Layout.Errors(errors)}
          {Layout.CsrfField(http)}
          <label for="code">Code from your authenticator app, or a recovery code</label>
          <input id="code" name="code" autocomplete="one-time-code" inputmode="text" required maxlength="20" autofocus>
          <button type="submit">Verify</button>
          <p><a href="/login">Start over</a></p>
        </form>
        """);

    public static Html Settings(HttpContext http, bool enabled, IEnumerable<string> errors) => enabled
        ? Html.Of($"""
            <section id="two-factor">
              <h1>Two-factor authentication is on</h1>
              {Layout.Errors(errors)}
              <form method="post" action="/settings/2fa/recovery-codes" hx-post="/settings/2fa/recovery-codes" hx-target="#two-factor" hx-swap="outerHTML">
                <h2>New recovery codes</h2>
                {Layout.CsrfField(http)}
                <label for="rc-password">Password</label>
                <input id="rc-password" name="password" type="password" autocomplete="current-password" required>
                <label for="rc-code">Current code</label>
                <input id="rc-code" name="code" autocomplete="one-time-code" required maxlength="6">
                <button type="submit">Replace my recovery codes</button>
              </form>
              <form method="post" action="/settings/2fa/disable" hx-post="/settings/2fa/disable" hx-target="#two-factor" hx-swap="outerHTML">
                <h2>Turn off</h2>
                {Layout.CsrfField(http)}
                <label for="off-password">Password</label>
                <input id="off-password" name="password" type="password" autocomplete="current-password" required>
                <label for="off-code">Current code or a recovery code</label>
                <input id="off-code" name="code" autocomplete="one-time-code" required maxlength="20">
                <button type="submit">Turn off two-factor authentication</button>
              </form>
            </section>
            """)
        : Html.Of($"""
            <section id="two-factor">
              <h1>Two-factor authentication is off</h1>
              {Layout.Errors(errors)}
              <form method="post" action="/settings/2fa/setup" hx-post="/settings/2fa/setup" hx-target="#two-factor" hx-swap="outerHTML">
                {Layout.CsrfField(http)}
                <label for="setup-password">Password</label>
                <input id="setup-password" name="password" type="password" autocomplete="current-password" required maxlength="1024">
                <button type="submit">Set up an authenticator app</button>
              </form>
            </section>
            """);

    public static Html Enrol(HttpContext http, SetupResponse setup, IEnumerable<string> errors) => Html.Of($"""
        <section id="two-factor">
          <h1>Scan this code</h1>
          {Layout.Errors(errors)}
          <img class="qr" alt="QR code for your authenticator app" width="200" height="200"
               src="data:image/svg+xml;base64,{Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes(setup.QrSvg))}">
          <p>Or enter this key: <code>{setup.Secret}</code></p>
          <form method="post" action="/settings/2fa/enable" hx-post="/settings/2fa/enable" hx-target="#two-factor" hx-swap="outerHTML">
            {Layout.CsrfField(http)}
            <label for="confirm-code">Code shown by the app</label>
            <input id="confirm-code" name="code" autocomplete="one-time-code" inputmode="numeric" required maxlength="6">
            <button type="submit">Turn on</button>
          </form>
        </section>
        """);

    public static Html RecoveryCodes(IReadOnlyList<string> codes) => Html.Of($"""
        <section id="two-factor">
          <h1>Your recovery codes</h1>
          <p role="status">Each works once if you lose your authenticator. They are shown only now: store them safely.</p>
          <ol class="codes">{Html.Join(codes.Select(c => Html.Of($"<li><code>{c}</code></li>")))}</ol>
          <p><a href="/settings/2fa">Done</a></p>
        </section>
        """);
}
