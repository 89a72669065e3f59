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
  // A deleted message becomes its tombstone where it is shown (its text and files are gone).
  events.addEventListener("message.deleted", (e) => {
    const tombstone = fragment(e.data);
    const shown = document.getElementById(tombstone.id);
    if (shown) {
      shown.classList.add("deleted");
      shown.querySelectorAll("p, ul.attachments").forEach((part) => part.remove());
      shown.append(tombstone.querySelector("p"));
    }
    refreshList();
  });
  // An edited message replaces the one shown (same id); one not shown is left alone.
  events.addEventListener("message.edited", (e) => {
    const edited = fragment(e.data);
    document.getElementById(edited.id)?.replaceWith(edited);
    refreshList();
  });
  // A rename or a membership change: the list is refreshed; a conversation the reader was just
  // removed from (or left in another tab) closes.
  events.addEventListener("conversation", (e) => {
    const update = fragment(e.data);
    if (update.dataset.conversation === openId() && update.dataset.member === "false") { location.assign("/"); return; }
    refreshList();
  });
  // A reaction added or taken back: the message's count for that emoji moves by one.
  events.addEventListener("reaction", (e) => {
    const change = fragment(e.data).dataset;
    const shown = document.getElementById("m-" + change.message);
    if (!shown) return;
    let list = shown.querySelector("ul.reactions");
    if (!list) {
      list = Object.assign(document.createElement("ul"), { className: "reactions" });
      list.setAttribute("aria-label", "Reactions");
      shown.append(list);
    }
    let item = [...list.children].find((li) => li.dataset.emoji === change.emoji);
    if (!item && change.added === "true") {
      item = Object.assign(document.createElement("li"), { className: "reaction" });
      item.dataset.emoji = change.emoji;
      item.append(Object.assign(document.createElement("span"), { className: "emoji", textContent: change.emoji }), " ",
        Object.assign(document.createElement("span"), { className: "count", textContent: "0" }));
      list.append(item);
    }
    if (!item) return;
    const count = Number(item.querySelector(".count").textContent) + (change.added === "true" ? 1 : -1);
    if (count <= 0) { item.remove(); return; }
    item.querySelector(".count").textContent = String(count);
    if (change.mine === "true") item.classList.toggle("mine", change.added === "true");
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
  function composerStatus(form) {
    return form.querySelector(".errors") ?? form.insertAdjacentElement("afterbegin", Object.assign(document.createElement("p"), { className: "errors", role: "alert" }));
  }

  document.addEventListener("submit", async (e) => {
    const form = e.target;
    if (form.id !== "composer") return;
    e.preventDefault();
    const text = form.elements.body.value;
    const status = composerStatus(form);
    status.textContent = "";
    const pending = [...form.querySelectorAll("#pending li")];
    if (pending.some((li) => !li.dataset.id && !li.classList.contains("failed"))) {
      status.textContent = "Wait for the uploads to finish.";
      return;
    }
    const attachments = pending.filter((li) => li.dataset.id).map((li) => li.dataset.id);
    if (!text.trim() && attachments.length === 0) return;
    // With attachments the message goes as JSON to the API (the same endpoint as the form route).
    const response = attachments.length === 0
      ? await post(form.action, new URLSearchParams(new FormData(form)), "application/x-www-form-urlencoded")
      : await post("/api/messages", JSON.stringify({ conversationId: form.dataset.conversation, body: text, attachments }), "application/json");
    if (response.ok) {
      form.elements.body.value = "";
      form.querySelector("#pending")?.replaceChildren();
    } else {
      const problem = await response.json().catch(() => null);
      status.textContent = problem?.title ?? `Not sent (${response.status})`;
    }
  });

  // Attachments: picked, dropped or pasted files upload at once (XHR, for the progress bar); the
  // composer sends their ids with the message. The server names, sizes and types them.
  function upload(file) {
    const list = document.getElementById("pending");
    if (!list) return;
    const li = document.createElement("li");
    const name = Object.assign(document.createElement("span"), { className: "name", textContent: file.name || "pasted file" });
    const remove = Object.assign(document.createElement("button"), { type: "button", className: "remove", textContent: "×", title: "Remove" });
    remove.setAttribute("aria-label", `Remove ${name.textContent}`);
    const progress = Object.assign(document.createElement("progress"), { max: 1, value: 0 });
    li.append(name, remove, progress);
    list.append(li);
    const xhr = new XMLHttpRequest();
    remove.addEventListener("click", () => { xhr.abort(); li.remove(); });
    xhr.open("POST", "/api/attachments");
    xhr.setRequestHeader("X-CSRF-Token", csrf());
    xhr.upload.addEventListener("progress", (e) => { if (e.lengthComputable) progress.value = e.loaded / e.total; });
    xhr.addEventListener("load", () => {
      let answer = null;
      try { answer = JSON.parse(xhr.responseText); } catch { /* not JSON */ }
      if (xhr.status === 201 && answer?.id) {
        li.dataset.id = answer.id;
        progress.remove();
        name.textContent = answer.name;
        li.classList.add("done");
      } else {
        li.classList.add("failed");
        progress.remove();
        li.append(Object.assign(document.createElement("span"), { className: "error", textContent: answer?.title ?? `Upload failed (${xhr.status})` }));
      }
    });
    xhr.addEventListener("error", () => { li.classList.add("failed"); progress.remove(); });
    const data = new FormData();
    data.append("file", file, file.name || "pasted");
    xhr.send(data);
  }

  document.addEventListener("change", (e) => {
    if (e.target.id !== "attach-input") return;
    for (const file of e.target.files) upload(file);
    e.target.value = "";
  });
  document.addEventListener("paste", (e) => {
    if (!document.getElementById("composer") || !e.clipboardData?.files.length) return;
    e.preventDefault();
    for (const file of e.clipboardData.files) upload(file);
  });
  document.addEventListener("dragover", (e) => {
    const composer = document.getElementById("composer");
    if (!composer || !e.dataTransfer?.types.includes("Files")) return;
    e.preventDefault();
    composer.classList.add("dragging");
  });
  document.addEventListener("dragleave", (e) => {
    if (e.relatedTarget === null) document.getElementById("composer")?.classList.remove("dragging");
  });
  document.addEventListener("drop", (e) => {
    const composer = document.getElementById("composer");
    if (!composer || !e.dataTransfer?.files.length) return;
    e.preventDefault();
    composer.classList.remove("dragging");
    for (const file of e.dataTransfer.files) upload(file);
  });
})();
