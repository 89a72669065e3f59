// AMS chat: live updates over server-sent events, the composer, history, receipts, typing,
// edits, reactions, group settings, notifications and the keyboard. No framework: htmx loads the
// sidebar's forms, this file does the rest. Every fragment it inserts comes from the server with
// all user-written text HTML-encoded; text this file writes goes through textContent.
(() => {
  "use strict";
  const chat = document.querySelector(".chat");
  if (!chat) return;
  const me = chat.dataset.me;
  const csrf = () => document.querySelector("input[name=_csrf]")?.value ?? "";
  const messages = () => document.getElementById("messages");
  const openId = () => messages()?.dataset.conversation;
  const byId = (id) => document.getElementById(id);
  // Touch keyboards have no Shift+Enter: there Enter is a new line and the Send button sends.
  const touch = matchMedia("(pointer: coarse)").matches;

  function fragment(html) {
    const template = document.createElement("template");
    template.innerHTML = html.trim();
    return template.content.firstElementChild;
  }

  // A write refused for a stale anti-forgery token (the session changed in another tab: see
  // forms.js's renewToken) did nothing: the page checks it is still its user's, takes the token of
  // the session held now and tries once more.
  async function call(method, url, body, extraHeaders) {
    const send = () => {
      const headers = { "X-CSRF-Token": csrf(), "X-Requested-With": "fetch", ...extraHeaders };
      if (body !== undefined && typeof body === "string") headers["Content-Type"] ??= "application/json";
      return fetch(url, { method, credentials: "same-origin", headers, body });
    };
    const response = await send();
    if (response.status !== 403) return response;
    const problem = await response.clone().json().catch(() => null);
    if (problem?.title !== "Anti-forgery token missing or invalid" || !(await stillMe()) || !(await window.amsRenewToken?.())) return response;
    return send();
  }
  const post = (url, body, type) => call("POST", url, body, { "Content-Type": type });
  // A validation problem's title is only "Bad Request": its detail says what to change.
  const problemTitle = async (response) => {
    const problem = await response.json().catch(() => null);
    return (problem?.errors ? problem.detail : problem?.title) ?? `Error ${response.status}`;
  };

  // A key per draft: a retry of the same text reuses it, so the server stores it once (api.md).
  function newKey() {
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  // ---- Names, local times, day separators, grouping -------------------------------------------
  const memberItems = () => [...document.querySelectorAll("#members li[data-username]")];
  // A display name is anyone's to choose: the username goes beside it unless they are the same name (Handle.Beside on the server).
  const shownName = (name, username) => !name || name.toLowerCase() === username.toLowerCase() ? username : `${name} (@${username})`;
  const nameOf = (username) => shownName(memberItems().find((li) => li.dataset.username === username)?.dataset.name, username);
  const timeFormat = new Intl.DateTimeFormat(undefined, { hour: "numeric", minute: "2-digit" });
  const fullFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "full", timeStyle: "short" });
  const dayFormat = new Intl.DateTimeFormat(undefined, { weekday: "long", day: "numeric", month: "long", year: "numeric" });
  const dayKey = (date) => `${date.getFullYear()}-${date.getMonth()}-${date.getDate()}`;
  function dayLabel(date) {
    const today = new Date();
    const yesterday = new Date(today.getFullYear(), today.getMonth(), today.getDate() - 1);
    if (dayKey(date) === dayKey(today)) return "Today";
    if (dayKey(date) === dayKey(yesterday)) return "Yesterday";
    return dayFormat.format(date);
  }
  const GROUP_WINDOW_MS = 5 * 60 * 1000;

  // Runs after every change to the list: times in the reader's zone and locale, a separator per
  // day, and a sender's consecutive messages (within five minutes) under one name.
  function decorate() {
    const list = messages();
    if (!list) return;
    list.querySelectorAll("li.day").forEach((li) => li.remove());
    let previous = null;
    for (const li of list.querySelectorAll("li.message")) {
      const time = li.querySelector(":scope > time");
      const at = time ? new Date(time.getAttribute("datetime")) : null;
      if (time && !time.dataset.local) {
        time.textContent = timeFormat.format(at);
        time.title = fullFormat.format(at);
        time.dataset.local = "1";
      }
      if (at && (!previous || dayKey(previous.at) !== dayKey(at))) {
        const day = document.createElement("li");
        day.className = "day";
        day.textContent = dayLabel(at);
        li.before(day);
      }
      const continued = previous && at && previous.sender === li.dataset.sender && dayKey(previous.at) === dayKey(at)
        && at - previous.at < GROUP_WINDOW_MS && !li.classList.contains("deleted");
      li.classList.toggle("continued", Boolean(continued));
      if (at) previous = { sender: li.dataset.sender, at };
    }
  }

  // ---- The unread count in the title and the favicon ------------------------------------------
  let baseTitle = document.title;
  const icon = document.querySelector("link[rel=icon]");
  function showUnread() {
    const unread = [...document.querySelectorAll("#conversations .badge")].reduce((sum, b) => sum + Number(b.dataset.unread ?? 0), 0);
    document.title = unread > 0 ? `(${unread}) ${baseTitle}` : baseTitle;
    const label = unread > 99 ? "99+" : String(unread);
    const svg = unread === 0
      ? `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><rect width="32" height="32" rx="7" fill="#2857d6"/><text x="16" y="22" font-family="sans-serif" font-size="16" font-weight="700" text-anchor="middle" fill="#fff">A</text></svg>`
      : `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><rect width="32" height="32" rx="7" fill="#2857d6"/><circle cx="21" cy="11" r="11" fill="#c62828"/><text x="21" y="16" font-family="sans-serif" font-size="${label.length > 2 ? 9 : 13}" font-weight="700" text-anchor="middle" fill="#fff">${label}</text></svg>`;
    if (icon) icon.href = "data:image/svg+xml," + encodeURIComponent(svg);
  }

  // Unread counts, order and previews come from the server, so they are never wrong for long.
  // One refresh at a time; a change during a refresh asks for one more, so the last word wins.
  let refreshing = false, again = false;
  function refreshList() {
    if (refreshing) { again = true; return; }
    refreshing = true;
    // As many as are shown, so older pages loaded by hand stay (the server's limit is 200).
    const shown = Math.min(Math.max(document.querySelectorAll("#conversations li[data-conversation]").length, 50), 200);
    fetch(`/c/list?active=${encodeURIComponent(openId() ?? "")}&limit=${shown}`, { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } })
      .then((r) => (r.ok ? r.text() : null))
      .then((html) => { if (html !== null) { byId("conversations").innerHTML = html; showUnread(); } })
      .catch(() => { /* offline: the next event refreshes it */ })
      .finally(() => {
        refreshing = false;
        if (again) { again = false; refreshList(); }
      });
  }

  // "Older conversations" ends a list with more: the next page replaces the button.
  byId("conversations")?.addEventListener("click", (e) => {
    const button = e.target.closest("li.more button");
    if (!button || button.disabled) return;
    button.disabled = true;
    fetch(`/c/list?active=${encodeURIComponent(openId() ?? "")}&before=${encodeURIComponent(button.dataset.before)}`,
      { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } })
      .then((r) => (r.ok ? r.text() : null))
      .then((html) => {
        if (html === null) { button.disabled = false; return; }
        const template = document.createElement("template");
        template.innerHTML = html.trim();
        // A live refresh may have brought some of them in already.
        for (const li of template.content.querySelectorAll("li[data-conversation]")) if (byId(li.id)) li.remove();
        button.closest("li").replaceWith(template.content);
        showUnread();
      })
      .catch(() => { button.disabled = false; });
  });

  // ---- Read receipts with names ----------------------------------------------------------------
  let lastRead = 0;
  const lastMessageId = () => {
    const last = [...(messages()?.querySelectorAll("li.message") ?? [])].pop();
    return last ? Number(last.id.slice(2)) : 0;
  };
  // Read means seen: not while the reader is up in the history ("New messages" showing) or away.
  function markRead() {
    const list = messages();
    const id = lastMessageId();
    if (!list || !id || document.visibilityState !== "visible" || !atEnd(list)) return;
    if (id <= lastRead) return;
    lastRead = id;
    post(`/api/conversations/${list.dataset.conversation}/read`, JSON.stringify({ upTo: String(id) }), "application/json")
      .then(refreshList, () => { lastRead = 0; });
  }
  // "Seen by Bob, Carol": the other members whose read mark has reached the latest message.
  function showReceipt() {
    const receipt = byId("receipt");
    if (!receipt) return;
    const last = lastMessageId();
    const seen = memberItems().filter((li) => li.dataset.username !== me && li.dataset.readUpTo && Number(li.dataset.readUpTo) >= last);
    receipt.textContent = last && seen.length ? `Seen by ${seen.map((li) => shownName(li.dataset.name, li.dataset.username)).join(", ")}` : "";
  }

  // ---- Scrolling: stay at the end unless the reader scrolled up ---------------------------------
  const atEnd = (list) => list.scrollHeight - list.scrollTop - list.clientHeight < 80;
  let pinned = true;   // at the end as of the reader's last scroll
  function scrollToEnd() {
    const list = messages();
    if (list) list.scrollTop = list.scrollHeight;
    pinned = true;
    byId("jump-new")?.setAttribute("hidden", "");
  }
  // An image takes its height only once loaded, after the list was scrolled to its end: a reader
  // who was there stays there.
  messages()?.addEventListener("load", (e) => { if (e.target.tagName === "IMG" && pinned) scrollToEnd(); }, true);
  byId("jump-new")?.addEventListener("click", () => { scrollToEnd(); byId("body")?.focus(); });

  // ---- History: the first page at once, then one older page per scroll to the top --------------
  let loadingOlder = false, firstPage = true;
  async function loadOlder() {
    const list = messages();
    const older = byId("older");
    if (!list || !older?.dataset.older || loadingOlder) return;
    loadingOlder = true;
    try {
      const response = await fetch(older.dataset.older, { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } });
      if (!response.ok) return;
      const template = document.createElement("template");
      template.innerHTML = (await response.text()).trim();
      // Keep the reader's place: the distance from the bottom does not change.
      const fromBottom = list.scrollHeight - list.scrollTop;
      for (const li of template.content.querySelectorAll("li.message")) if (byId(li.id)) li.remove();
      older.replaceWith(template.content);
      decorate();
      if (firstPage) {
        firstPage = false;
        scrollToEnd();
        markRead();
        showReceipt();
      } else {
        list.scrollTop = list.scrollHeight - fromBottom;
      }
    } catch {
      // Offline: the button stays, the next scroll or click tries again.
    } finally {
      loadingOlder = false;
    }
  }
  messages()?.addEventListener("scroll", (e) => {
    const list = e.currentTarget;
    if (list.scrollTop < 120 && !firstPage) loadOlder();
    pinned = atEnd(list);
    if (pinned) { byId("jump-new")?.setAttribute("hidden", ""); markRead(); }
  });
  messages()?.addEventListener("click", (e) => { if (e.target.closest("#older button")) loadOlder(); });
  loadOlder();

  // ---- Live events -------------------------------------------------------------------------------
  // The stream starts where the page was rendered (data-after) and, after a drop, resumes after
  // the last event it saw; "Reconnecting…" is announced while it is down and cleared when back.
  const connection = byId("connection");
  let lastEventId = chat.dataset.after ?? "";
  let events = null, retryDelay = 1000, reconnectTimer = 0, opened = false;
  function setConnection(text) {
    if (connection && connection.textContent !== text) connection.textContent = text;
    chat.classList.toggle("offline", text !== "");
  }
  // A stream can go silent without closing: a node that hangs, or a connection that a network
  // dropped without a word. The server sends a keep-alive event as the stream opens and every
  // period after (its data: the period in ms); heard from for none of two and a half periods, the
  // stream is opened again, resuming after the last event.
  let heardAt = 0, keepAliveMs = 0;
  setInterval(() => {
    if (!keepAliveMs || events?.readyState !== EventSource.OPEN || Date.now() - heardAt < keepAliveMs * 2.5) return;
    events.close();
    setConnection("Reconnecting…");
    connect();
  }, 1000);
  function connect() {
    events = new EventSource("/events?after=" + encodeURIComponent(lastEventId));
    heardAt = Date.now();
    // A stream that opens again does so with the cookie the browser holds now, which a sign-in in
    // another tab may have made another user's.
    events.addEventListener("open", () => { if (opened) stillMe(); opened = true; retryDelay = 1000; heardAt = Date.now(); setConnection(""); });
    events.addEventListener("keep-alive", (e) => { keepAliveMs = Number(e.data) || keepAliveMs; heardAt = Date.now(); });
    events.addEventListener("error", () => {
      setConnection("Reconnecting…");
      // EventSource retries by itself while it can; once it gives up (CLOSED), so do we, later,
      // unless it gave up because the session ended (signed out, or ended from another device):
      // then the conversation leaves the screen.
      if (events.readyState === EventSource.CLOSED) stillMe();
      if (events.readyState === EventSource.CLOSED && !reconnectTimer) {
        reconnectTimer = setTimeout(() => { reconnectTimer = 0; connect(); }, retryDelay);
        retryDelay = Math.min(retryDelay * 2, 30000);
      }
    });
    for (const [kind, handler] of Object.entries(handlers)) {
      events.addEventListener(kind, (e) => {
        heardAt = Date.now();
        if (e.lastEventId) lastEventId = e.lastEventId;
        handler(e);
      });
    }
  }
  // The page shows its user's conversations only: signed out, it goes to the sign-in page; signed
  // in as someone else (in another tab), to that user's start page. True while it is still its user's.
  async function stillMe() {
    const answer = await fetch("/api/me", { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } }).catch(() => null);
    if (answer?.status === 401) { location.assign("/login"); return false; }
    const user = answer?.ok ? await answer.json().catch(() => null) : null;
    if (user?.username && user.username !== me) { location.assign("/"); return false; }
    return true;
  }
  addEventListener("online", () => { if (events?.readyState === EventSource.CLOSED) { clearTimeout(reconnectTimer); reconnectTimer = 0; connect(); } });

  const announcer = byId("announcer");
  function announce(text) {
    if (!announcer) return;
    announcer.textContent = "";
    // A fresh text node each time, so the same words twice are still read out.
    setTimeout(() => { announcer.textContent = text; }, 50);
  }

  let notificationsWanted = false;
  function notify(li) {
    if (!notificationsWanted || !document.hidden || !("Notification" in window) || Notification.permission !== "granted") return;
    const body = li.querySelector("p.body")?.textContent ?? "📎";
    const note = new Notification(shownName(li.dataset.senderName, li.dataset.sender), { body: body.slice(0, 200), tag: `ams-${li.dataset.conversation}` });
    note.addEventListener("click", () => { window.focus(); location.assign(`/c/${li.dataset.conversation}`); });
  }

  const typingTimers = new Map();
  function showTyping() {
    const typing = byId("typing");
    if (!typing) return;
    const names = [...typingTimers.keys()].map(nameOf);
    typing.textContent = names.length === 0 ? "" : names.length === 1 ? `${names[0]} is typing…` : `${names.join(", ")} are typing…`;
  }

  const handlers = {
    message(e) {
      const li = fragment(e.data);
      const list = messages();
      const mine = li.dataset.sender === me;
      if (list && li.dataset.conversation === list.dataset.conversation && !byId(li.id)) {
        const wasAtEnd = atEnd(list);
        li.classList.add("arrived");
        list.append(li);
        decorate();
        if (typingTimers.has(li.dataset.sender)) { clearTimeout(typingTimers.get(li.dataset.sender)); typingTimers.delete(li.dataset.sender); showTyping(); }
        if (wasAtEnd || mine) scrollToEnd(); else byId("jump-new")?.removeAttribute("hidden");
        if (!mine) announce(`${shownName(li.dataset.senderName, li.dataset.sender)}: ${li.querySelector("p.body")?.textContent ?? "sent a file"}`);
        markRead();
        showReceipt();
      }
      if (!mine) notify(li);
      refreshList();
    },
    // A deleted message becomes its tombstone where it is shown (its text and files are gone).
    "message.deleted"(e) {
      const tombstone = fragment(e.data);
      const shown = byId(tombstone.id);
      if (shown) {
        shown.classList.add("deleted");
        shown.querySelectorAll("p, ul.attachments, ul.reactions, .actions, .edited, form.edit-form").forEach((part) => part.remove());
        shown.append(tombstone.querySelector("p"));
        decorate();
      }
      refreshList();
    },
    // An edited message replaces the one shown (same id); one not shown is left alone.
    "message.edited"(e) {
      const edited = fragment(e.data);
      byId(edited.id)?.replaceWith(edited);
      decorate();
      refreshList();
    },
    // A rename or a membership change: the header and the list follow; a conversation the reader
    // was just removed from (or left in another tab) closes.
    conversation(e) {
      const update = fragment(e.data);
      if (update.dataset.conversation === openId()) {
        if (update.dataset.member === "false") { location.assign("/"); return; }
        const title = update.querySelector("h2")?.textContent;
        if (title && byId("panel-title")) {
          byId("panel-title").textContent = title;
          baseTitle = `${title} · AMS`;
          showUnread();
        }
        // Names and members come with the page: a reload is the simplest way to show a changed group.
        const known = memberItems().map((li) => li.dataset.username).sort().join(",");
        const now = (update.querySelector(".members")?.textContent ?? "").split(",").map((m) => m.trim().replace(/^@/, "")).filter(Boolean).sort().join(",");
        if (now && known !== now) refreshMembers();
      }
      refreshList();
    },
    // A reaction added or taken back, with the emoji's count on the message now. The count is set,
    // not moved by one: the message on the page may already include this reaction.
    reaction(e) {
      const change = fragment(e.data).dataset;
      const shown = byId("m-" + change.message);
      if (!shown) return;
      const count = Number(change.count);
      let list = shown.querySelector("ul.reactions");
      let item = list && [...list.children].find((li) => li.dataset.emoji === change.emoji);
      if (!item && !(count > 0)) return;
      if (!list) {
        list = Object.assign(document.createElement("ul"), { className: "reactions" });
        list.setAttribute("aria-label", "Reactions");
        const actions = shown.querySelector(".actions");
        if (actions) actions.before(list); else shown.append(list);
      }
      if (!item) {
        item = Object.assign(document.createElement("li"), { className: "reaction" });
        item.dataset.emoji = change.emoji;
        const button = Object.assign(document.createElement("button"), { type: "button" });
        button.setAttribute("aria-pressed", "false");
        button.append(Object.assign(document.createElement("span"), { className: "emoji", textContent: change.emoji }), " ",
          Object.assign(document.createElement("span"), { className: "count", textContent: "0" }));
        item.append(button);
        list.append(item);
      }
      if (!(count > 0)) { item.remove(); if (!list.children.length) list.remove(); return; }
      item.querySelector(".count").textContent = String(count);
      if (change.mine === "true") {
        item.classList.toggle("mine", change.added === "true");
        item.querySelector("button")?.setAttribute("aria-pressed", String(change.added === "true"));
      }
    },
    read(e) {
      const receipt = fragment(e.data).dataset;
      if (receipt.username === me) { refreshList(); return; }
      if (receipt.conversation !== openId()) return;
      const member = memberItems().find((li) => li.dataset.username === receipt.username);
      if (member && Number(receipt.upTo) > Number(member.dataset.readUpTo || 0)) member.dataset.readUpTo = receipt.upTo;
      showReceipt();
    },
    typing(e) {
      const notice = fragment(e.data).dataset;
      if (notice.conversation !== openId() || notice.username === me) return;
      clearTimeout(typingTimers.get(notice.username));
      typingTimers.set(notice.username, setTimeout(() => { typingTimers.delete(notice.username); showTyping(); }, 6000));
      showTyping();
    },
    reset() { location.reload(); },
  };
  connect();

  // Members, online dots and read marks, as the API sees them now (after a membership change, and
  // every half minute for presence, which has no event of its own).
  async function refreshMembers() {
    const id = openId();
    if (!id) return;
    try {
      const response = await fetch(`/api/conversations/${id}`, { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } });
      if (!response.ok) return;
      const view = await response.json();
      const list = byId("members");
      const known = new Map(memberItems().map((li) => [li.dataset.username, li]));
      if (view.members.length !== known.size || view.members.some((m) => !known.has(m.username))) { location.reload(); return; }
      for (const m of view.members) {
        const li = known.get(m.username);
        li.classList.toggle("online", m.online);
        li.classList.toggle("offline", !m.online);
        if (m.readUpTo) li.dataset.readUpTo = m.readUpTo;
      }
      list?.setAttribute("data-refreshed", new Date().toISOString());
      showReceipt();
    } catch { /* offline */ }
  }
  if (openId()) setInterval(() => { if (!document.hidden) refreshMembers(); }, 30000);

  document.addEventListener("visibilitychange", () => { markRead(); if (!document.hidden) refreshMembers(); });

  // ---- The composer ------------------------------------------------------------------------------
  let sending = false;
  let draft = null;   // { text, key }: the key of the text last tried, reused by Retry
  let lastTyping = 0;

  function composerStatus(form) {
    let status = form.querySelector(".send-status");
    if (!status) {
      status = Object.assign(document.createElement("p"), { className: "errors send-status" });
      status.setAttribute("role", "alert");
      form.prepend(status);
    }
    return status;
  }
  function clearStatus(form) { form.querySelector(".send-status")?.remove(); }
  function showFailure(form, reason) {
    const status = composerStatus(form);
    status.replaceChildren(`Not sent: ${reason.replace(/\.$/, "")}. Your text is kept. `);
    const retry = Object.assign(document.createElement("button"), { type: "button", className: "link retry", textContent: "Retry" });
    retry.addEventListener("click", () => form.requestSubmit());
    status.append(retry);
  }

  document.addEventListener("keydown", (e) => {
    const target = e.target;
    if (target.id === "body") {
      if (e.key === "Enter" && !e.shiftKey && !e.isComposing && !touch) {
        e.preventDefault();
        target.form.requestSubmit();
        return;
      }
      // ↑ on an empty composer edits your last message (as in Slack and Mattermost).
      if (e.key === "ArrowUp" && target.value === "" && !e.altKey) {
        const mine = [...(messages()?.querySelectorAll("li.message.mine:not(.deleted)") ?? [])].pop();
        if (mine) { e.preventDefault(); startEdit(mine); }
        return;
      }
    }
    // Alt+↑/↓: the previous or next conversation in the list.
    if (e.altKey && (e.key === "ArrowUp" || e.key === "ArrowDown") && !e.ctrlKey && !e.metaKey) {
      const links = [...document.querySelectorAll("#conversations a")];
      if (links.length === 0) return;
      const current = links.findIndex((a) => a.getAttribute("aria-current") === "page");
      const next = current < 0 ? 0 : current + (e.key === "ArrowDown" ? 1 : -1);
      if (next >= 0 && next < links.length && next !== current) { e.preventDefault(); location.assign(links[next].href); }
      return;
    }
    // Ctrl+K or Cmd+K: the quick switcher.
    if ((e.ctrlKey || e.metaKey) && e.key.toLowerCase() === "k") {
      e.preventDefault();
      openSwitcher();
    }
  });

  document.addEventListener("input", (e) => {
    if (e.target.id !== "body") return;
    const id = openId();
    if (id && e.target.value.trim() && Date.now() - lastTyping > 3000) {
      lastTyping = Date.now();
      post(`/api/conversations/${id}/typing`, undefined, "application/json").catch(() => {});
    }
  });

  document.addEventListener("submit", async (e) => {
    const form = e.target;
    if (form.id !== "composer") return;
    e.preventDefault();
    // One send in flight per composer: a second Enter while it is out does nothing.
    if (sending) return;
    const text = form.elements.body.value;
    const pending = [...form.querySelectorAll("#pending li")];
    if (pending.some((li) => !li.dataset.id && !li.classList.contains("failed"))) {
      composerStatus(form).textContent = "Wait for the uploads to finish.";
      return;
    }
    const attachments = pending.filter((li) => li.dataset.id).map((li) => li.dataset.id);
    if (!text.trim() && attachments.length === 0) return;
    const signature = JSON.stringify([text, attachments]);
    if (draft?.signature !== signature) draft = { signature, key: newKey() };
    sending = true;
    form.classList.add("sending");
    form.querySelector("button.send")?.setAttribute("aria-disabled", "true");
    try {
      const headers = { "Idempotency-Key": draft.key };
      // With attachments the message goes as JSON to the API (the same endpoint as the form route).
      const response = attachments.length === 0
        ? await call("POST", form.action, new URLSearchParams(new FormData(form)), { ...headers, "Content-Type": "application/x-www-form-urlencoded" })
        : await call("POST", "/api/messages", JSON.stringify({ conversationId: form.dataset.conversation, body: text, attachments }), headers);
      if (response.ok) {
        draft = null;
        clearStatus(form);
        // The stored message, from the form route: shown now rather than when the event stream
        // brings it (which waits for Redis); the stream's copy is then skipped as already shown.
        if ((response.headers.get("Content-Type") ?? "").startsWith("text/html")) handlers.message({ data: await response.text() });
        if (form.elements.body.value === text) form.elements.body.value = "";
        form.querySelector("#pending")?.replaceChildren();
      } else if (response.status === 401) {
        location.assign("/login");
      } else {
        showFailure(form, await problemTitle(response));
      }
    } catch {
      showFailure(form, navigator.onLine ? "the server could not be reached" : "you are offline");
    } finally {
      sending = false;
      form.classList.remove("sending");
      form.querySelector("button.send")?.removeAttribute("aria-disabled");
    }
  });

  // ---- Edit, delete, react -----------------------------------------------------------------------
  function startEdit(li) {
    if (li.querySelector("form.edit-form")) return;
    const body = li.querySelector("p.body");
    const form = Object.assign(document.createElement("form"), { className: "edit-form" });
    const label = Object.assign(document.createElement("label"), { className: "visually-hidden", textContent: "Edit message", htmlFor: `edit-${li.id}` });
    const input = Object.assign(document.createElement("textarea"), { id: `edit-${li.id}`, value: body?.textContent ?? "", maxLength: 8000, rows: 2 });   // UTF-16 units: the server counts 4000 characters, an emoji two units
    const save = Object.assign(document.createElement("button"), { type: "submit", textContent: "Save" });
    const cancel = Object.assign(document.createElement("button"), { type: "button", className: "link", textContent: "Cancel" });
    const hint = Object.assign(document.createElement("small"), { textContent: "Enter saves, Escape cancels" });
    form.append(label, input, save, cancel, hint);
    body?.setAttribute("hidden", "");
    li.append(form);
    input.focus();
    const close = () => { form.remove(); body?.removeAttribute("hidden"); byId("body")?.focus(); };
    cancel.addEventListener("click", close);
    input.addEventListener("keydown", (e) => {
      if (e.key === "Escape") { e.preventDefault(); close(); }
      if (e.key === "Enter" && !e.shiftKey && !touch) { e.preventDefault(); form.requestSubmit(); }
    });
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      if (!input.value.trim()) return;
      try {
        const response = await call("PATCH", `/api/messages/${li.id.slice(2)}`, JSON.stringify({ body: input.value }));
        if (!response.ok) { hint.textContent = `Not saved: ${await problemTitle(response)}`; return; }
        close();   // the edited message arrives over the stream and replaces this one
      } catch { hint.textContent = "Not saved: you are offline"; }
    });
  }

  const PICKER = ["👍", "❤️", "😂", "🎉", "😮", "😢"];
  function togglePicker(li, button) {
    const open = li.querySelector(".picker");
    if (open) { open.remove(); button.setAttribute("aria-expanded", "false"); return; }
    const picker = Object.assign(document.createElement("span"), { className: "picker" });
    picker.setAttribute("role", "group");
    picker.setAttribute("aria-label", "Pick a reaction");
    for (const emoji of PICKER) {
      const choice = Object.assign(document.createElement("button"), { type: "button", textContent: emoji });
      choice.dataset.emoji = emoji;
      choice.setAttribute("aria-label", `React with ${emoji}`);
      picker.append(choice);
    }
    button.after(picker);
    button.setAttribute("aria-expanded", "true");
    picker.querySelector("button").focus();
  }
  async function react(li, emoji) {
    const item = [...li.querySelectorAll("li.reaction")].find((r) => r.dataset.emoji === emoji);
    const method = item?.classList.contains("mine") ? "DELETE" : "PUT";
    await call(method, `/api/messages/${li.id.slice(2)}/reactions/${encodeURIComponent(emoji)}`).catch(() => {});
  }

  messages()?.addEventListener("click", async (e) => {
    const li = e.target.closest("li.message");
    if (!li) return;
    // On touch screens there is no hover: a tap on a message shows its actions.
    if (!e.target.closest("button, a, form")) {
      messages().querySelectorAll("li.tapped").forEach((other) => { if (other !== li) other.classList.remove("tapped"); });
      li.classList.toggle("tapped");
      return;
    }
    if (e.target.closest("button.edit")) startEdit(li);
    else if (e.target.closest("button.delete")) {
      if (!confirm("Delete this message for everyone? This cannot be undone.")) return;
      const response = await call("DELETE", `/api/messages/${li.id.slice(2)}`).catch(() => null);
      if (!response?.ok) announce("The message was not deleted.");
    } else if (e.target.closest("button.react")) togglePicker(li, e.target.closest("button.react"));
    else if (e.target.closest(".picker button")) {
      const emoji = e.target.closest(".picker button").dataset.emoji;
      li.querySelector(".picker")?.remove();
      li.querySelector("button.react")?.setAttribute("aria-expanded", "false");
      await react(li, emoji);
    } else if (e.target.closest("li.reaction button")) await react(li, e.target.closest("li.reaction").dataset.emoji);
  });

  // ---- Group settings ----------------------------------------------------------------------------
  const groupErrors = (text) => { const p = byId("group-errors"); if (p) p.textContent = text; };
  document.addEventListener("submit", async (e) => {
    const form = e.target;
    if (!form.matches("form.rename, form.add-member")) return;
    e.preventDefault();
    const id = form.dataset.conversation;
    try {
      const response = form.matches(".rename")
        ? await call("PATCH", `/api/conversations/${id}`, JSON.stringify({ title: form.elements.title.value }))
        : await call("POST", `/api/conversations/${id}/members`, JSON.stringify({ username: form.elements.username.value.trim() }));
      if (!response.ok) { groupErrors(await problemTitle(response)); return; }
      groupErrors("");
      if (form.matches(".add-member")) location.reload();
    } catch { groupErrors("You are offline."); }
  });
  document.addEventListener("click", async (e) => {
    const leave = e.target.closest("button.leave");
    const remove = e.target.closest("button.remove-member");
    if (!leave && !remove) return;
    const username = leave ? me : remove.dataset.username;
    if (leave && !confirm("Leave this group? You will stop receiving its messages.")) return;
    if (remove && !confirm(`Remove ${nameOf(username)} from this group?`)) return;
    try {
      const response = await call("DELETE", `/api/conversations/${openId()}/members/${encodeURIComponent(username)}`);
      if (!response.ok) { groupErrors(await problemTitle(response)); return; }
      location.assign(leave ? "/" : location.pathname);
    } catch { groupErrors("You are offline."); }
  });

  // ---- Username autocomplete ("New chat" and "Add member") ---------------------------------------
  let lookup = 0;
  document.addEventListener("input", (e) => {
    const input = e.target;
    if (!(input instanceof HTMLInputElement) || input.dataset.autocomplete !== "users") return;
    const parts = input.value.split(",");
    const prefix = parts.pop().trim();
    clearTimeout(lookup);
    if (prefix.length < 2) return;
    lookup = setTimeout(async () => {
      try {
        const response = await fetch(`/api/users?prefix=${encodeURIComponent(prefix)}&limit=8`, { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } });
        if (!response.ok) return;
        const users = await response.json();
        const head = parts.map((p) => p.trim()).filter(Boolean);
        byId("user-suggestions")?.replaceChildren(...users.filter((u) => u.username !== me).map((u) =>
          Object.assign(document.createElement("option"), { value: [...head, u.username].join(", "), label: u.displayName })));
      } catch { /* offline */ }
    }, 150);
  });

  // ---- Quick switcher (Ctrl/Cmd+K) ---------------------------------------------------------------
  const switcher = byId("switcher");
  const switcherInput = byId("switcher-input");
  const switcherList = byId("switcher-list");
  let switcherActive = 0;
  // Conversations older than the list shows, fetched when the switcher opens: it finds every one.
  let switcherOlder = [], switcherLoads = 0;
  const linksOf = (root) => [...root.querySelectorAll("a[href^='/c/']")]
    .map((a) => ({ href: a.getAttribute("href"), title: a.querySelector(".title")?.textContent ?? "" }));
  function switcherOptions() {
    const query = switcherInput.value.trim().toLowerCase();
    const seen = new Set();
    // A page fetched while the list moved may repeat one: each conversation once.
    return [...linksOf(byId("conversations") ?? document.createElement("ul")), ...switcherOlder]
      .filter((c) => !seen.has(c.href) && seen.add(c.href) && c.title.toLowerCase().includes(query));
  }
  async function loadOlderForSwitcher() {
    const load = ++switcherLoads;   // a reopened switcher starts over; the earlier load stops
    switcherOlder = [];
    let before = [...document.querySelectorAll("#conversations li.more button")].pop()?.dataset.before;
    // At most 1,000 more (five pages of the server's largest), so a huge account stays quick.
    for (let page = 0; before && page < 5 && load === switcherLoads; page++) {
      try {
        const response = await fetch(`/c/list?limit=200&before=${encodeURIComponent(before)}`,
          { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } });
        if (!response.ok || load !== switcherLoads) return;
        const html = await response.text();
        if (load !== switcherLoads) return;
        const template = document.createElement("template");
        template.innerHTML = html.trim();
        switcherOlder.push(...linksOf(template.content));
        before = template.content.querySelector("li.more button")?.dataset.before;
        renderSwitcher();
      } catch { return; /* offline: the shown ones still switch */ }
    }
  }
  function renderSwitcher() {
    const options = switcherOptions();
    switcherActive = Math.min(switcherActive, Math.max(options.length - 1, 0));
    switcherList.replaceChildren(...options.map((c, i) => {
      const li = Object.assign(document.createElement("li"), { id: `switch-${i}`, textContent: c.title });
      li.setAttribute("role", "option");
      li.setAttribute("aria-selected", String(i === switcherActive));
      li.dataset.href = c.href;
      return li;
    }));
    if (options.length) switcherInput.setAttribute("aria-activedescendant", `switch-${switcherActive}`);
    else switcherInput.removeAttribute("aria-activedescendant");
  }
  function openSwitcher() {
    if (!switcher || switcher.open) return;
    switcherInput.value = "";
    switcherActive = 0;
    renderSwitcher();
    switcher.showModal();
    switcherInput.focus();
    loadOlderForSwitcher();
  }
  switcherInput?.addEventListener("input", () => { switcherActive = 0; renderSwitcher(); });
  switcherInput?.addEventListener("keydown", (e) => {
    const count = switcherList.children.length;
    if (e.key === "ArrowDown" || e.key === "ArrowUp") {
      e.preventDefault();
      if (count) switcherActive = (switcherActive + (e.key === "ArrowDown" ? 1 : count - 1)) % count;
      renderSwitcher();
    } else if (e.key === "Enter") {
      e.preventDefault();
      const choice = switcherList.children[switcherActive];
      if (choice) location.assign(choice.dataset.href);
    }
  });
  switcherList?.addEventListener("click", (e) => {
    const choice = e.target.closest("li[data-href]");
    if (choice) location.assign(choice.dataset.href);
  });
  switcher?.addEventListener("click", (e) => { if (e.target === switcher) switcher.close(); });
  // Closed (Escape, a click outside, a choice): the pages still loading are not wanted.
  switcher?.addEventListener("close", () => { switcherLoads++; });

  // ---- Desktop notifications: asked for on a click, shown only while the tab is hidden -----------
  const enable = byId("enable-notifications");
  if (enable && "Notification" in window) {
    if (Notification.permission === "default") enable.hidden = false;
    notificationsWanted = Notification.permission === "granted";
    enable.addEventListener("click", async () => {
      const answer = await Notification.requestPermission();
      notificationsWanted = answer === "granted";
      enable.hidden = true;
    });
  }

  // ---- Attachments: picked, dropped or pasted files upload at once (XHR, for the progress bar);
  // the composer sends their ids with the message. The server names, sizes and types them.
  function upload(file) {
    const list = byId("pending");
    if (!list) return;
    const li = document.createElement("li");
    const name = Object.assign(document.createElement("span"), { className: "name", textContent: file.name || "pasted file" });
    const remove = Object.assign(document.createElement("button"), { type: "button", className: "remove", textContent: "×", title: "Remove" });
    remove.setAttribute("aria-label", `Remove ${name.textContent}`);
    const progress = Object.assign(document.createElement("progress"), { max: 1, value: 0 });
    progress.setAttribute("aria-label", `Uploading ${name.textContent}`);
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
    if (!byId("composer") || !e.clipboardData?.files.length) return;
    e.preventDefault();
    for (const file of e.clipboardData.files) upload(file);
  });
  document.addEventListener("dragover", (e) => {
    const composer = byId("composer");
    if (!composer || !e.dataTransfer?.types.includes("Files")) return;
    e.preventDefault();
    composer.classList.add("dragging");
  });
  document.addEventListener("dragleave", (e) => {
    if (e.relatedTarget === null) byId("composer")?.classList.remove("dragging");
  });
  document.addEventListener("drop", (e) => {
    const composer = byId("composer");
    if (!composer || !e.dataTransfer?.files.length) return;
    e.preventDefault();
    composer.classList.remove("dragging");
    for (const file of e.dataTransfer.files) upload(file);
  });

  // After switching chats the composer has the focus (not body: no eleven Tabs back to it). On
  // touch screens that would open the keyboard over the history, so there it waits for a tap.
  showUnread();
  if (!touch) byId("body")?.focus();
})();
