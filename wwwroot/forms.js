// Form fields that say in words what their pattern wants: the browser's own message for a
// pattern mismatch is only "Please match the requested format".
(() => {
  "use strict";
  function explain(input) {
    input.setCustomValidity(input.validity.patternMismatch ? input.dataset.patternMessage : "");
  }
  document.addEventListener("input", (e) => { if (e.target.matches?.("input[data-pattern-message]")) explain(e.target); });
  document.addEventListener("invalid", (e) => { if (e.target.matches?.("input[data-pattern-message]")) explain(e.target); }, true);

  // An answer htmx has no fragment for (a problem: 503 while a backing service is down, 403 for a
  // stale anti-forgery token) would be swapped in as raw JSON in place of the form. It is said in
  // the form instead, which stays as it was for another try.
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
    status.textContent = problem?.title
      ? [problem.title, problem.detail].filter(Boolean).map((text) => text.replace(/\.$/, "")).join(". ") + "."
      : `The server answered ${response.status}. Try again shortly.`;
  });
})();
