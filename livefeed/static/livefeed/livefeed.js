/* livefeed widget: a live unread badge, an inbox dropdown and toasts.
 *
 * Configured by data-* on [data-livefeed] (livefeed/widget.html); does nothing
 * without it. One tab per browser holds the EventSource: browsers allow six
 * HTTP/1.1 connections per host across all tabs, so a stream per tab would
 * stall the site. The leader is elected with Web Locks (BroadcastChannel
 * heartbeats where those are missing) and relays every event and its id to the
 * other tabs; a new leader resumes after the last relayed id, losing nothing.
 */
"use strict";
(() => {
  const root = document.querySelector("[data-livefeed]");
  if (!root || window.livefeed) return;

  const cfg = root.dataset;
  const strings = JSON.parse(cfg.strings || "{}");
  const lang = document.documentElement.lang || undefined;
  const plurals = new Intl.PluralRules(lang);
  const ages = new Intl.RelativeTimeFormat(lang, { numeric: "auto" });
  const PAGE = 20;
  const TOAST_MS = Number(cfg.toastTimeout) || 6000;
  const STORM_SIZE = 3; // more toasts than this within STORM_MS become one summary
  const STORM_MS = 1000;
  const MAX_TOASTS = 4;
  const LEVELS = ["info", "success", "warning", "error"];
  const CHANNEL = /^[A-Za-z0-9_.-]{1,90}$/;
  const $ = (selector) => root.querySelector(selector);
  const bell = $(".livefeed-bell");
  const count = $(".livefeed-count");
  const spoken = $(".livefeed-spoken");
  const conn = $(".livefeed-conn");
  const panel = $(".livefeed-panel");
  const scroller = $(".livefeed-scroll");
  const list = $(".livefeed-list");
  const empty = $(".livefeed-empty");
  const more = $(".livefeed-more");
  const moreText = more.textContent;
  const toasts = $(".livefeed-toasts");

  const text = (key, n) => (strings[key] || key).replace("{count}", n);
  const counted = (key, n) => {
    const form = `${key}_${plurals.select(n)}`;
    return text(strings[form] ? form : `${key}_other`, n);
  };
  const levelOf = (level) => (LEVELS.includes(level) ? level : "info");

  function el(tag, className, content) {
    const node = document.createElement(tag);
    node.className = className;
    if (content != null) node.textContent = content; // text, never HTML
    return node;
  }

  function safeUrl(url) {
    try {
      const parsed = new URL(url, location.href);
      return url && ["http:", "https:"].includes(parsed.protocol) ? parsed.href : "";
    } catch {
      return ""; // javascript:, data: and garbage get no link
    }
  }

  function ago(iso) {
    const seconds = (Date.parse(iso) - Date.now()) / 1000;
    const units = [["year", 31536000], ["month", 2592000], ["week", 604800], ["day", 86400], ["hour", 3600], ["minute", 60]];
    for (const [unit, size] of units) {
      if (Math.abs(seconds) >= size) return ages.format(Math.trunc(seconds / size), unit);
    }
    return Number.isNaN(seconds) ? "" : ages.format(0, "second");
  }

  // Counts -------------------------------------------------------------------
  let unread = Number(cfg.unreadCount) || 0;
  let unseen = Number(cfg.unseenCount) || 0;

  function setUnread(n) {
    unread = Math.max(0, n);
    count.textContent = unread > 9 ? "9+" : String(unread);
    count.hidden = unread === 0;
    const label = unread ? counted("unread", unread) : text("unread_zero");
    if (spoken.textContent !== label) spoken.textContent = label;
    if (!unread) for (const li of items.values()) setRead(li);
  }

  function setCounts(body) {
    if (typeof body?.unread_count === "number") setUnread(body.unread_count);
    if (typeof body?.unseen_count === "number") unseen = body.unseen_count;
  }

  function api(path, method = "GET") {
    const headers = { Accept: "application/json" };
    if (method !== "GET") headers["X-CSRFToken"] = cfg.csrfToken;
    const keepalive = method !== "GET"; // a click on a link must not cancel its "read"
    return fetch(cfg.apiUrl + path, { method, headers, keepalive, credentials: "same-origin" })
      .then((response) => {
        if (!response.ok) throw new Error(`livefeed: ${method} ${path} answered ${response.status}`);
        return response.json();
      })
      .then((body) => {
        setCounts(body);
        return body;
      });
  }

  // Inbox --------------------------------------------------------------------
  const items = new Map(); // notification id -> <li>
  let loaded = false;
  let failed = false;
  let exhausted = false;
  let oldest = null;
  let loading = null;
  let generation = 0; // a fresh load makes older answers stale

  function render(n) {
    const level = levelOf(n.level);
    const href = safeUrl(n.url);
    const li = el("li", "livefeed-item");
    li.dataset.id = n.id;
    li.dataset.level = level;
    const main = el(href ? "a" : "div", "livefeed-main");
    if (href) main.href = href;
    else main.tabIndex = -1; // reachable with the arrow keys
    const title = el("span", "livefeed-title", n.title);
    title.prepend(el("span", "livefeed-sr", `${text(level)}: `));
    main.append(el("span", "livefeed-dot"), title);
    if (n.body) main.append(el("span", "livefeed-body", n.body));
    const time = el("time", "livefeed-time", ago(n.created_at));
    time.dateTime = n.created_at;
    time.title = new Date(n.created_at).toLocaleString(lang);
    main.append(time);
    li.append(main);
    if (!n.read_at) {
      li.classList.add("livefeed-unread");
      const mark = el("button", "livefeed-mark");
      mark.type = "button";
      mark.title = text("mark_read");
      mark.setAttribute("aria-label", text("mark_read"));
      li.append(mark);
    }
    items.set(n.id, li);
    return li;
  }

  function setRead(li) {
    li.classList.remove("livefeed-unread");
    const mark = li.querySelector(".livefeed-mark");
    if (mark === document.activeElement) li.firstChild.focus();
    mark?.remove();
  }

  function markRead(id) {
    const li = items.get(id);
    if (li && !li.classList.contains("livefeed-unread")) return;
    if (li) setRead(li);
    setUnread(unread - 1); // the answer and the "read" event bring the true count
    api(`${id}/read/`, "POST").catch(console.error);
  }

  function load(fresh) {
    if (fresh) generation += 1;
    else if (loading || exhausted) return;
    const mine = generation;
    const query = new URLSearchParams({ limit: PAGE });
    if (!fresh && oldest !== null) query.set("before", oldest);
    more.textContent = moreText;
    more.hidden = false;
    loading = api(`?${query}`)
      .then((body) => {
        if (mine !== generation) return;
        if (fresh) {
          list.replaceChildren();
          items.clear();
        }
        for (const n of body.results) {
          if (!items.has(n.id)) list.append(render(n));
          oldest = n.id;
          newest = Math.max(newest, n.id);
        }
        exhausted = body.has_more === undefined ? body.results.length < PAGE : !body.has_more;
        loaded = true;
        failed = false;
      })
      .catch((error) => {
        console.error(error);
        if (mine === generation) failed = exhausted = true; // retried on the next open
      })
      .finally(() => {
        if (mine !== generation) return;
        loading = null;
        refreshList();
      });
  }

  function refreshList() {
    empty.hidden = !loaded || items.size > 0;
    more.hidden = exhausted && !failed;
    if (failed) more.textContent = text("load_error");
    if (!panel.hidden && !exhausted && nearBottom()) load();
  }

  const nearBottom = () => scroller.scrollTop + scroller.clientHeight >= scroller.scrollHeight - 48;
  scroller.addEventListener("scroll", () => nearBottom() && load(), { passive: true });

  list.addEventListener("click", (event) => {
    const li = event.target.closest(".livefeed-item");
    if (li && (event.target.closest(".livefeed-mark") || event.target.closest("a"))) {
      markRead(Number(li.dataset.id));
    }
  });

  $(".livefeed-readall").addEventListener("click", () => {
    setUnread(0);
    api("read-all/", "POST").catch(console.error);
  });

  // Dropdown -----------------------------------------------------------------
  function open() {
    if (!panel.hidden) return;
    panel.hidden = false;
    bell.setAttribute("aria-expanded", "true");
    for (const time of list.querySelectorAll("time")) time.textContent = ago(time.dateTime);
    if (!loaded || failed) load(true);
    else refreshList();
    panel.focus();
    if (unseen > 0) {
      unseen = 0;
      api("seen-all/", "POST").catch(console.error);
    }
  }

  function close(returnFocus) {
    if (panel.hidden) return;
    panel.hidden = true;
    bell.setAttribute("aria-expanded", "false");
    if (returnFocus) bell.focus();
  }

  bell.addEventListener("click", () => (panel.hidden ? open() : close(true)));
  document.addEventListener("pointerdown", (event) => root.contains(event.target) || close(false));
  root.addEventListener("focusout", (event) => {
    if (event.relatedTarget && !root.contains(event.relatedTarget)) close(false);
  });
  root.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && !panel.hidden) {
      event.preventDefault();
      close(true);
    } else if ((event.key === "ArrowDown" || event.key === "ArrowUp") && panel.contains(event.target)) {
      event.preventDefault();
      const entries = [...list.querySelectorAll(".livefeed-main")];
      const at = entries.indexOf(event.target.closest(".livefeed-main"));
      const next = event.key === "ArrowDown" ? at + 1 : Math.max(at - 1, 0);
      entries[Math.min(next, entries.length - 1)]?.focus();
    }
  });

  // Toasts -------------------------------------------------------------------
  let recent = []; // {at, node} of the toasts shown in the last STORM_MS
  let summary = null;
  let lastArrival = 0;

  function show(node, level) {
    node.dataset.level = level;
    const dismiss = el("button", "livefeed-toast-close", "×");
    dismiss.type = "button";
    dismiss.setAttribute("aria-label", text("dismiss"));
    dismiss.addEventListener("click", () => node.remove());
    node.append(dismiss);
    let left = TOAST_MS;
    let started = 0;
    let timer = 0;
    let running = false;
    let hovered = false;
    let focused = false;
    const sync = () => {
      const run = !hovered && !focused; // paused while read or focused
      if (run && !running) {
        started = Date.now();
        timer = setTimeout(() => node.remove(), left);
      } else if (!run && running) {
        clearTimeout(timer);
        left -= Date.now() - started;
      }
      running = run;
    };
    node.addEventListener("mouseenter", () => {
      hovered = true;
      sync();
    });
    node.addEventListener("mouseleave", () => {
      hovered = false;
      sync();
    });
    node.addEventListener("focusin", () => {
      focused = true;
      sync();
    });
    node.addEventListener("focusout", (event) => {
      focused = node.contains(event.relatedTarget);
      sync();
    });
    toasts.append(node);
    while (toasts.children.length > MAX_TOASTS) toasts.firstElementChild.remove();
    sync();
    return () => {
      clearTimeout(timer);
      left = TOAST_MS;
      running = false;
      sync();
    };
  }

  function toast(n) {
    const now = Date.now();
    const burst = now - lastArrival < STORM_MS;
    lastArrival = now;
    if (burst && summary?.node.isConnected) {
      summary.label.textContent = counted("storm", ++summary.count);
      return summary.restart();
    }
    recent = recent.filter((item) => now - item.at < STORM_MS);
    if (recent.length < STORM_SIZE) {
      recent.push({ at: now, node: notificationToast(n) });
      return;
    }
    for (const item of recent) item.node.remove();
    summary = { count: recent.length + 1, node: el("div", "livefeed-toast livefeed-summary") };
    recent = [];
    summary.label = el("p", "livefeed-toast-title", counted("storm", summary.count));
    const action = el("button", "livefeed-toast-action", text("show"));
    action.type = "button";
    action.addEventListener("click", () => {
      summary.node.remove();
      open();
    });
    summary.node.append(summary.label, action);
    summary.restart = show(summary.node, "info");
  }

  function notificationToast(n) {
    const level = levelOf(n.level);
    const href = safeUrl(n.url);
    const node = el("div", "livefeed-toast");
    const title = el(href ? "a" : "p", "livefeed-toast-title", n.title);
    title.prepend(el("span", "livefeed-sr", `${text(level)}: `));
    if (href) {
      title.href = href;
      title.addEventListener("click", () => markRead(n.id));
    }
    node.append(title);
    if (n.body) node.append(el("p", "livefeed-toast-body", n.body));
    show(node, level);
    return node;
  }

  // Events -------------------------------------------------------------------
  const known = new Set(); // notification ids already shown: a replay shows nothing twice
  let newest = Number(cfg.newestId) || 0; // the newest notification this page knows of

  function notified(n) {
    if (typeof n !== "object" || n === null) return true;
    if (n.id != null) {
      if (known.has(n.id) || items.has(n.id)) return false;
      known.add(n.id);
      newest = Math.max(newest, n.id);
    }
    // Group and broadcast notifications carry no per-user count: count locally.
    setUnread(typeof n.unread_count === "number" ? n.unread_count : unread + 1);
    unseen = typeof n.unseen_count === "number" ? n.unseen_count : unseen + 1;
    if (loaded) {
      list.prepend(render(n));
      refreshList();
    }
    toast(n);
    return true;
  }

  function deliver({ name, data: raw }) {
    let data = raw;
    try {
      data = JSON.parse(raw);
    } catch {
      // not JSON: hand the text on as it came
    }
    if (name === "notification" && !notified(data)) return;
    if (name === "read") {
      for (const id of Array.isArray(data?.ids) ? data.ids : []) {
        const li = items.get(id);
        if (li) setRead(li);
      }
      // A group's "read for all" has no per-user count: ask for ours.
      if (typeof data?.unread_count === "number") setCounts(data);
      else api("?limit=1").catch(console.error);
    }
    if (name === "reset") catchUp();
    emit(name, data);
  }

  function emit(name, detail) {
    for (const target of [root, document]) {
      target.dispatchEvent(new CustomEvent(`livefeed:${name}`, { detail }));
    }
  }

  // The server could not replay what this page missed (its log moved on):
  // show the unread notifications newer than any this page knows, then reload.
  function catchUp() {
    const since = newest;
    api(`?unread=1&limit=${PAGE}`)
      .then((body) => {
        for (const n of body.results.reverse()) {
          if (n.id > since && notified(n)) emit("notification", n);
        }
        if (loaded) load(true);
      })
      .catch(console.error);
  }

  // The stream, held by the leader tab -----------------------------------------
  const words = (value) => (value || "").split(/\s+/).filter(Boolean);
  const names = new Set(["message", "notification", "read", "reset", ...words(cfg.events)]);
  const channels = new Set(words(cfg.channels));
  const relay = "BroadcastChannel" in window ? new BroadcastChannel("livefeed") : null;
  const me = Math.random().toString(36).slice(2);
  let lastId = cfg.lastEventId || "";
  let leader = false;
  let source = null;
  let state = "";
  let attempt = 0;
  let retryTimer = 0;

  function advance(id, name) {
    // A reset's id is the log's newest, below this page's id after a database
    // restore: resume from it, and forget the ids of the log that is gone.
    if (name === "reset" && id) {
      lastId = id;
      delivered.clear();
    } else if (id && !(Number(id) <= Number(lastId))) lastId = id;
  }

  // Ids delivered lately: resuming from an earlier position (a follower's new
  // channel) replays some of them again.
  const delivered = new Set();
  let previousId = ""; // lastEventId of the stream's previous event

  function repeated(id) {
    // An event without an id field keeps the previous lastEventId: never a repeat.
    const own = id && id !== previousId;
    previousId = id;
    if (!own) return false;
    if (delivered.has(id)) return true;
    delivered.add(id);
    if (delivered.size > 1000) delivered.delete(delivered.values().next().value);
    return false;
  }

  function status(next) {
    if (leader) relay?.postMessage({ type: "status", state: next, from: me });
    if (next === state) return;
    state = conn.dataset.state = next;
    conn.title = conn.firstChild.textContent = text(next);
  }

  function streamUrl() {
    const url = new URL(cfg.streamUrl, location.href);
    for (const name of channels) url.searchParams.append("channel", name);
    if (lastId) url.searchParams.set("lastEventId", lastId);
    return url;
  }

  function connect() {
    clearTimeout(retryTimer);
    source?.close();
    const url = streamUrl();
    previousId = "";
    const es = (source = new EventSource(url));
    for (const name of names) es.addEventListener(name, received);
    es.addEventListener("open", () => {
      attempt = 0;
      status("open");
    });
    es.addEventListener("error", () => {
      if (es !== source) return;
      if (es.readyState !== EventSource.CLOSED) return status("connecting");
      // The browser gave up for good (a 502/503 during a deploy): retry with
      // jittered exponential backoff, so a restarted server is not stampeded.
      status("offline");
      const delay = Math.min(30000, 1000 * 2 ** attempt++) * (0.5 + Math.random() / 2);
      retryTimer = setTimeout(() => retry(url), delay);
    });
  }

  async function retry(url) {
    const abort = new AbortController();
    const code = await fetch(url, { signal: abort.signal, credentials: "same-origin" }).then(
      (response) => response.status,
      () => 0,
    );
    abort.abort();
    if (!leader) return;
    if (code === 401) return; // signed out: stay offline until the page reloads
    if ((code === 400 || code === 403) && channels.size) {
      console.error("livefeed: a subscribed channel was refused; streaming without", [...channels]);
      channels.clear();
    }
    connect();
  }

  function received(event) {
    if (event.target !== source) return;
    if (event.type === "reset") advance(event.lastEventId, "reset");
    if (repeated(event.lastEventId)) return;
    advance(event.lastEventId);
    const message = { type: "event", name: event.type, data: event.data, id: event.lastEventId, from: me };
    relay?.postMessage(message);
    deliver(message);
  }

  function want(moreNames, moreChannels, since) {
    let reconnect = false;
    for (const name of moreNames) {
      if (names.has(name)) continue;
      names.add(name);
      if (leader) source?.addEventListener(name, received);
    }
    for (const channel of moreChannels) {
      if (!CHANNEL.test(channel)) throw new TypeError(`livefeed: invalid channel name ${channel}`);
      reconnect ||= !channels.has(channel);
      channels.add(channel);
    }
    if (leader && reconnect && source) {
      // A follower's new channel may have had events since its own position,
      // which this tab may already have passed on other channels.
      if (since && Number(since) < Number(lastId)) lastId = since;
      connect();
    }
  }

  function ask() {
    relay?.postMessage({ type: "want", names: [...names], channels: [...channels], since: lastId });
  }

  function lead() {
    leader = true;
    relay?.postMessage({ type: "leader", from: me });
    connect();
  }

  function resign() {
    leader = false;
    clearTimeout(retryTimer);
    source?.close();
    source = null;
  }

  relay?.addEventListener("message", ({ data: m }) => {
    if (m.type === "want" && leader) {
      want(
        m.names,
        m.channels.filter((channel) => CHANNEL.test(channel)),
        /^\d+$/.test(m.since || "") ? m.since : "",
      );
      status(state); // tell the new tab how the stream is doing
    } else if (leader) {
      return;
    } else if (m.type === "event") {
      advance(m.id, m.name);
      deliver(m);
    } else if (m.type === "status") {
      status(m.state);
    } else if (m.type === "leader") {
      ask(); // a new leader learns what this tab listens to
    }
  });

  // Without Web Locks (older browsers, plain-http sites) the leader beats on the
  // BroadcastChannel; when the beat stops a follower takes over, and of two
  // leaders the one with the smaller id stays.
  function heartbeats() {
    let heard = Date.now() - 2000; // no answer to our "want" within ~1 s: lead
    relay.addEventListener("message", ({ data: m }) => {
      if (m.type === "bye") heard = 0;
      else if (m.from && leader && m.from < me) resign();
      else if (m.from && !leader) heard = Date.now();
    });
    addEventListener("pagehide", () => leader && relay.postMessage({ type: "bye" }));
    const tick = () => {
      if (leader) relay.postMessage({ type: "beat", from: me });
      else if (Date.now() - heard > 2500) lead();
      setTimeout(tick, 500 + Math.random() * 500);
    };
    tick();
  }

  function on(name, handler) {
    const listener = (event) => handler(event.detail, event);
    document.addEventListener(`livefeed:${name}`, listener);
    want([name], []);
    if (!leader) ask();
    return () => document.removeEventListener(`livefeed:${name}`, listener);
  }

  window.livefeed = Object.freeze({
    on,
    subscribe(channel, handlers = {}) {
      want([], [channel]);
      const offs = Object.entries(handlers).map(([name, handler]) => on(name, handler));
      if (!leader) ask();
      return () => offs.forEach((off) => off());
    },
    open,
    close: () => close(false),
  });

  status("connecting");
  if (navigator.locks) {
    // Held until this tab goes away; then the next waiting tab takes over.
    navigator.locks.request("livefeed-leader", () => new Promise(() => lead()));
    ask();
  } else if (relay) {
    ask();
    heartbeats();
  } else {
    lead();
  }
})();
