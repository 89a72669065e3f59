// AMS chat: live updates over server-sent events, the composer, read receipts.
// No framework: htmx does the page fragments, this file the few things htmx does not.
// Every fragment it inserts comes from the server with all user-written text HTML-encoded.
(() => {
  "use strict";
  const chat = document.querySelector(".chat");
  if (!chat) return;
  const me = chat.dataset.me;
  const csrf = () => document.querySelector("input[name=_csrf]")?.value ?? "";
  const messages = () => document.getElementById("messages");
  const openId = () => messages()?.dataset.conversation;

  function fragment(html) {
    const template = document.createElement("template");
    template.innerHTML = html.trim();
    return template.content.firstElementChild;
  }

  function post(url, body, type) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRF-Token": csrf(), "X-Requested-With": "fetch", "Content-Type": type },
      body,
    });
  }

  // Unread counts, order and previews come from the server, so they are never wrong for long.
  // One refresh at a time; a change during a refresh asks for one more, so the last word wins.
  let refreshing = false, again = false;
  function refreshList() {
    if (refreshing) { again = true; return; }
    refreshing = true;
    fetch(`/c/list?active=${encodeURIComponent(openId() ?? "")}`, { credentials: "same-origin" })
      .then((r) => (r.ok ? r.text() : null))
      .then((html) => { if (html !== null) document.getElementById("conversations").innerHTML = html; })
      .finally(() => {
        refreshing = false;
        if (again) { again = false; refreshList(); }
      });
  }

  let lastRead = 0;
  function markRead() {
    const list = messages();
    const last = list?.querySelector("li.message:last-of-type");
    if (!list || !last || document.visibilityState !== "visible") return;
    const id = Number(last.id.slice(2));
    if (id <= lastRead) return;
    lastRead = id;
    post(`/api/conversations/${list.dataset.conversation}/read`, JSON.stringify({ upTo: String(id) }), "application/json")
      .then(refreshList);
  }

  function scrollToEnd() {
    const list = messages();
    if (list) list.scrollTop = list.scrollHeight;
  }

  // One element per message id, whether it came from history or from the stream.
  function dedupe() {
    const seen = new Set();
    for (const li of messages()?.querySelectorAll("li.message") ?? []) {
      if (seen.has(li.id)) li.remove(); else seen.add(li.id);
    }
  }

  // The stream starts where the page was rendered (data-after). EventSource reconnects by itself
  // and sends Last-Event-ID, so after a network drop or a server restart the stream replays
  // exactly what this page missed.
  const events = new EventSource("/events?after=" + encodeURIComponent(chat.dataset.after ?? ""));
  events.addEventListener("message", (e) => {
    const li = fragment(e.data);
    const list = messages();
    if (list && li.dataset.conversation === list.dataset.conversation && !document.getElementById(li.id)) {
      const atEnd = list.scrollHeight - list.scrollTop - list.clientHeight < 80;
      list.append(li);
      if (atEnd || li.classList.contains("mine")) scrollToEnd();
      markRead();
    }
    refreshList();
  });
  events.addEventListener("read", (e) => {
    const receipt = fragment(e.data);
    if (receipt.dataset.username === me) { refreshList(); return; }
    if (receipt.dataset.conversation === openId()) document.getElementById("receipt")?.replaceChildren(receipt);
  });
  events.addEventListener("open", () => chat.classList.remove("offline"));
  events.addEventListener("error", () => chat.classList.add("offline"));

  // History: the first page loads with the panel; older pages load when the top comes into view.
  const observer = new IntersectionObserver((entries) => {
    for (const entry of entries) if (entry.isIntersecting) entry.target.click();
  });
  let first = true;
  document.addEventListener("htmx:after:swap", () => {
    dedupe();
    const older = document.querySelector("#older button");
    if (older) observer.observe(older);
    if (first && messages()?.querySelector("li.message")) {
      first = false;
      scrollToEnd();
      markRead();
    }
  });
  document.addEventListener("visibilitychange", markRead);

  // The composer: Enter sends, Shift+Enter is a new line. The message itself arrives over the
  // stream, like everyone else's.
  document.addEventListener("keydown", (e) => {
    if (e.target.id === "body" && e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      e.target.form.requestSubmit();
    }
  });
  document.addEventListener("submit", async (e) => {
    const form = e.target;
    if (form.id !== "composer") return;
    e.preventDefault();
    const text = form.elements.body.value;
    if (!text.trim()) return;
    const status = form.querySelector(".errors") ?? form.insertAdjacentElement("afterbegin", Object.assign(document.createElement("p"), { className: "errors", role: "alert" }));
    status.textContent = "";
    const response = await post(form.action, new URLSearchParams(new FormData(form)), "application/x-www-form-urlencoded");
    if (response.ok) {
      form.elements.body.value = "";
    } else {
      const problem = await response.json().catch(() => null);
      status.textContent = problem?.title ?? `Not sent (${response.status})`;
    }
  });
})();
