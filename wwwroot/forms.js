// Form fields that say in words what their pattern wants: the browser's own message for a
// pattern mismatch is only "Please match the requested format".
(() => {
  "use strict";
  function explain(input) {
    input.setCustomValidity(input.validity.patternMismatch ? input.dataset.patternMessage : "");
  }
  document.addEventListener("input", (e) => { if (e.target.matches?.("input[data-pattern-message]")) explain(e.target); });
  document.addEventListener("invalid", (e) => { if (e.target.matches?.("input[data-pattern-message]")) explain(e.target); }, true);

  // The anti-forgery token is bound to the browser's session (or, signed out, its pre-session
  // cookie): a sign-in or sign-out in another tab leaves this page's token stale, and every try
  // of a form refused. A fresh copy of the page carries the token for the cookies held now.
  async function renewToken() {
    const page = await fetch(location.pathname + location.search, { credentials: "same-origin" }).catch(() => null);
    if (!page?.ok) return false;
    const token = new DOMParser().parseFromString(await page.text(), "text/html").querySelector("input[name=_csrf]")?.value;
    if (!token) return false;
    for (const input of document.querySelectorAll("input[name=_csrf]")) input.value = token;
    return true;
  }
  window.amsRenewToken = renewToken;
  const staleTokenTitle = "Anti-forgery token missing or invalid";

  // An answer htmx has no fragment for (a problem: 503 while a backing service is down, 403 for a
  // stale anti-forgery token) would be swapped in as raw JSON in place of the form. It is said in
  // the form instead, which stays as it was for another try (with a renewed token after a 403).
  document.addEventListener("htmx:before:response", async (e) => {
    const { response, sourceElement } = e.detail.ctx;
    if (!(response.headers.get("Content-Type") ?? "").startsWith("application/problem+json")) return;
    e.preventDefault();
    const problem = await response.raw.clone().json().catch(() => null);
    const form = sourceElement.closest("form") ?? sourceElement;
    let status = form.querySelector(":scope > .problem-status");
    if (!status) {
      status = Object.assign(document.createElement("p"), { className: "errors problem-status" });
      status.setAttribute("role", "alert");
      form.prepend(status);
    }
    status.textContent = problem?.title === staleTokenTitle && await renewToken()
      ? "This page was out of date (signed in or out in another tab, say). It is up to date now: try again."
      : problem?.title
        ? [problem.title, problem.detail].filter(Boolean).map((text) => text.replace(/\.$/, "")).join(". ") + "."
        : `The server answered ${response.status}. Try again shortly.`;
  });
})();
