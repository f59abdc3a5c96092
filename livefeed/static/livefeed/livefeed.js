/* livefeed widget: a live unread badge, an inbox dropdown and toasts.
 *
 * Built on the shared stream of livefeed-stream.js, which livefeed/widget.html
 * loads first: that module holds the connection and window.livefeed; what a row
 * draws alike with the inbox page (who did it, Today/Earlier, the badge's text)
 * is in livefeed-rows.js, loaded second. This file hooks in (counts, inbox, toasts, the connection dot), adds open() and close()
 * to window.livefeed, then starts the stream. Configured by data-* on
 * [data-livefeed]; does nothing without it.
 */
"use strict";
(() => {
  const root = document.querySelector("[data-livefeed]");
  const base = window.livefeed;
  const stream = base?.[Symbol.for("livefeed.stream")];
  const shared = window[Symbol.for("livefeed.rows")];
  if (!root?.querySelector(".livefeed-bell") || !stream || !shared || !window[Symbol.for("livefeed.toasts")]) return;

  const cfg = root.dataset;
  const strings = JSON.parse(cfg.strings || "{}");
  // The widget's own lang: the user's chosen language, which may not be the page's.
  const lang = root.closest("[lang]")?.lang || undefined;
  const plurals = new Intl.PluralRules(lang);
  const ages = new Intl.RelativeTimeFormat(lang, { numeric: "auto" });
  const PAGE = 20;
  const TOAST_MS = Number(cfg.toastTimeout) || 6000;
  const BADGE_MAX = Number(cfg.badgeMax) || 99;
  const countsUnseen = cfg.badge === "unseen"; // else the badge counts unread
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
  const { el, levelOf } = shared;

  const safeUrl = (url) => stream.safeUrl(url);

  function ago(iso) {
    const seconds = (Date.parse(iso) - Date.now()) / 1000;
    const units = [["year", 31536000], ["month", 2592000], ["week", 604800], ["day", 86400], ["hour", 3600], ["minute", 60]];
    for (const [unit, size] of units) {
      if (Math.abs(seconds) >= size) return ages.format(Math.trunc(seconds / size), unit);
    }
    return Number.isNaN(seconds) ? "" : ages.format(0, "second");
  }

  // What this page knows: the counts rendered on the server, then kept live.
  let unread = Number(cfg.unreadCount) || 0;
  let unseen = Number(cfg.unseenCount) || 0;
  // Notifications up to this id were in the counts the server rendered: a group
  // event for one of them, replayed after the page's log position, is no news.
  const rendered = Number(cfg.newestId) || 0;
  let newest = rendered; // the newest notification this page knows of
  const items = new Map(); // notification id -> <li> of the inbox

  // Counts -------------------------------------------------------------------

  function showBadge() {
    const [n, key] = countsUnseen ? [unseen, "new"] : [unread, "unread"];
    count.textContent = shared.badgeText(n, BADGE_MAX);
    count.hidden = n === 0;
    const label = n ? counted(key, n) : text(`${key}_zero`);
    if (spoken.textContent !== label) spoken.textContent = label;
  }

  function setUnread(n) {
    unread = Math.max(0, n);
    showBadge();
    if (!unread) for (const li of items.values()) setRead(li);
    syncReadAll();
  }

  function setUnseen(n) {
    unseen = Math.max(0, n);
    showBadge();
  }

  function setCounts(body) {
    if (typeof body?.unread_count === "number") setUnread(body.unread_count);
    if (typeof body?.unseen_count === "number") setUnseen(body.unseen_count);
  }

  // Changes this page has asked the server for. An answer to a request sent before the latest
  // was counted before that change (the dropdown asks for its list and marks all seen at
  // once): its counts are out of date, whenever it arrives.
  let changesAsked = 0;

  function api(path, method = "GET", json = undefined) {
    if (method !== "GET") changesAsked += 1;
    const asOf = changesAsked;
    const headers = { Accept: "application/json" };
    if (method !== "GET") headers["X-CSRFToken"] = cfg.csrfToken;
    if (json !== undefined) headers["Content-Type"] = "application/json";
    const keepalive = method !== "GET"; // a click on a link must not cancel its "read"
    const body = json === undefined ? undefined : JSON.stringify(json);
    return fetch(cfg.apiUrl + path, { method, headers, body, keepalive, credentials: "same-origin" })
      .then((response) => {
        if (!response.ok) throw new Error(`livefeed: ${method} ${path} answered ${response.status}`);
        return response.json();
      })
      .then((body) => {
        if (asOf === changesAsked) setCounts(body);
        return body;
      });
  }

  // Inbox --------------------------------------------------------------------
  let loaded = false;
  let failed = false;
  let exhausted = false;
  let oldest = null;
  let loading = null;
  let generation = 0; // a fresh load makes older answers stale
  let filter = "all"; // the tab shown: "all" or "unread"

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
    main.append(el("span", "livefeed-dot"));
    if (n.actor) main.append(shared.actorMark(n.actor, safeUrl));
    main.append(title);
    if (n.body) main.append(el("span", "livefeed-body", n.body));
    const time = el("time", "livefeed-time", ago(n.created_at));
    time.dateTime = n.created_at;
    time.title = new Date(n.created_at).toLocaleString(lang);
    main.append(time);
    li.append(main);
    decorateRow(li, n);
    decorate(li, n, href);
    if (n.read_at) setRead(li);
    else setUnreadAgain(li);
    li.dataset.when = n.updated_at || n.created_at; // its place in the list, so its section
    items.set(n.id, li);
    stream.remember(n.id, n.updated_at); // its live event, should it come after, is no news
    return li;
  }

  function setUnreadAgain(li) {
    if (li.classList.contains("livefeed-unread")) return;
    li.classList.add("livefeed-unread");
    readToggle(li);
  }

  function setRead(li) {
    if (!li.classList.contains("livefeed-unread") && li.querySelector(".livefeed-unmark")) return;
    li.classList.remove("livefeed-unread");
    readToggle(li);
  }

  function markRead(id) {
    const li = items.get(id);
    if (li && !li.classList.contains("livefeed-unread")) return;
    const undo = undoable(li ? [li] : []);
    if (li) setRead(li);
    setUnread(unread - 1); // the answer and the "read" event bring the true count
    api(`${id}/read/`, "POST").then(done, undo);
  }

  function load(fresh) {
    if (fresh) generation += 1;
    else if (loading || exhausted) return;
    const mine = generation;
    const query = new URLSearchParams({ limit: PAGE });
    if (filter === "unread") query.set("unread", "1");
    if (!fresh && oldest !== null) query.set("before", oldest);
    more.textContent = moreText;
    more.hidden = false;
    list.setAttribute("aria-busy", "true"); // also tells tests the list is settled
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
        list.removeAttribute("aria-busy");
        refreshList();
      });
  }

  function refreshList() {
    shared.placeSections(list, { today: text("today"), earlier: text("earlier") });
    empty.hidden = !loaded || items.size > 0;
    more.hidden = exhausted && !failed;
    if (failed) offerRetry();
    if (!panel.hidden && !exhausted && nearBottom()) load();
  }

  const nearBottom = () => scroller.scrollTop + scroller.clientHeight >= scroller.scrollHeight - 48;
  scroller.addEventListener("scroll", () => nearBottom() && load(), { passive: true });

  list.addEventListener("click", (event) => {
    const li = event.target.closest(".livefeed-item");
    const id = Number(li?.dataset.id);
    if (!li) return;
    if (event.target.closest(".livefeed-unmark")) markUnread(id);
    else if (event.target.closest(".livefeed-archive")) archive(id);
    else if (event.target.closest(".livefeed-mark, .livefeed-main")) markRead(id);
  });

  $(".livefeed-readall").addEventListener("click", () => {
    const undo = undoable([...items.values()]);
    setUnread(0);
    api("read-all/", "POST").then(done, undo);
  });

  // Dropdown -----------------------------------------------------------------
  function open() {
    if (!panel.hidden) return;
    panel.hidden = false;
    bell.setAttribute("aria-expanded", "true");
    for (const time of list.querySelectorAll("time")) time.textContent = ago(time.dateTime);
    if (!loaded || failed || filter === "unread") load(true); // rows read meanwhile leave Unread
    else refreshList(); // and the sections follow the clock past midnight
    panel.focus();
    if (unseen > 0) {
      setUnseen(0);
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

  // Toasts (shown by livefeed-toasts.js) ---------------------------------------
  const toaster = window[Symbol.for("livefeed.toasts")].createToasts(toasts, {
    timeout: TOAST_MS,
    words: { dismiss: text("dismiss"), show: text("show"), level: (level) => text(level), storm: (n) => counted("storm", n) },
    showAll: () => open(),
  });

  const toast = (n) => toaster.add(n.level, () => notificationToast(n));

  function notificationToast(n) {
    const level = levelOf(n.level);
    const href = safeUrl(n.url);
    const node = el("div", "livefeed-toast");
    if (n.actor) node.append(shared.actorMark(n.actor, safeUrl));
    const title = el(href ? "a" : "p", "livefeed-toast-title", n.title);
    title.prepend(el("span", "livefeed-sr", `${text(level)}: `));
    if (href) {
      title.href = href;
      title.addEventListener("click", () => markRead(n.id));
    }
    node.append(title);
    if (n.body) node.append(el("p", "livefeed-toast-body", n.body));
    decorateToast(node, title, n);
    return node;
  }

  // Workflow: folds, actions, snooze, removal (docs/javascript.md#the-notification-workflow)
  // The newest updated_at this page knows: a catch-up brings what changed after it.
  let changedUpTo = Date.now();

  function foldMark(n) {
    const mark = el("span", "livefeed-fold");
    const shown = el("span", "", `×${n.count}`);
    shown.setAttribute("aria-hidden", "true");
    mark.append(shown, el("span", "livefeed-sr", `(${counted("grouped", n.count)})`));
    return mark;
  }

  function decorateRow(li, n) {
    if (n.count > 1) li.querySelector(".livefeed-title").append(" ", foldMark(n));
    const bar = actionBar(n);
    const tools = el("span", "livefeed-tools");
    tools.append(snoozeMenu(n), archiveButton(n));
    bar.append(tools);
    li.append(bar);
  }

  // One toast per notification: a fold's toast replaces the one still showing.
  function decorateToast(node, title, n) {
    node.dataset.id = n.id;
    for (const other of toastsOf(n.id)) other.remove();
    if (n.count > 1) title.append(" ", foldMark(n));
    if (Array.isArray(n.actions) && n.actions.length) node.append(actionBar(n));
  }

  const toastsOf = (id) => [...toasts.children].filter((node) => node.dataset.id === String(id));

  function actionBar(n) {
    const bar = el("div", "livefeed-actions");
    bar.dataset.id = n.id;
    for (const action of Array.isArray(n.actions) ? n.actions : []) bar.append(renderAction(n, action));
    return bar;
  }

  function renderAction(n, action) {
    const post = action.method === "post";
    const href = post ? "" : safeUrl(action.url);
    const control = el(post ? "button" : href ? "a" : "span", "livefeed-action", action.label);
    if (post) {
      control.type = "button";
      control.addEventListener("click", () => runAction(n, action));
    } else if (href) {
      control.href = href;
      control.addEventListener("click", () => markRead(n.id)); // once: a row's "read" is no news to it
    }
    control.setAttribute("aria-label", `${action.label}: ${n.title}`);
    return control;
  }

  // A POST action goes only to this site, with the CSRF token (the server checks it was a path).
  function runAction(n, action) {
    const url = new URL(action.url, location.href);
    if (url.origin !== location.origin || !/^\/(?![/\\])/.test(action.url)) return;
    setOutcome(n.id, "busy", "");
    const headers = { "X-CSRFToken": cfg.csrfToken, Accept: "application/json" };
    fetch(url, { method: "POST", headers, credentials: "same-origin" })
      .then((response) => {
        if (!response.ok) throw response.status;
        setOutcome(n.id, "done", text("action_done"));
        markRead(n.id);
      })
      .catch((status) => {
        if (typeof status !== "number") console.error(status);
        const why = typeof status === "number" ? status : text("no_answer");
        setOutcome(n.id, "failed", text("action_failed").replace("{status}", why));
      });
  }

  function setOutcome(id, state, message) {
    for (const bar of root.querySelectorAll(".livefeed-actions")) {
      if (bar.dataset.id !== String(id)) continue;
      const had = bar.contains(document.activeElement);
      for (const button of bar.querySelectorAll("button.livefeed-action")) button.disabled = state === "busy";
      let note = bar.querySelector(".livefeed-outcome");
      if (!note) {
        note = el("span", "livefeed-outcome");
        note.setAttribute("role", "status");
        note.tabIndex = -1;
        bar.append(note);
      }
      note.dataset.state = state;
      note.textContent = message;
      if (had && state !== "failed") note.focus(); // a disabled button would drop the focus
    }
  }

  function snoozeMenu(n) {
    const wrap = el("span", "livefeed-snooze");
    const toggle = el("button", "livefeed-action livefeed-snooze-toggle"); // a clock, drawn in CSS
    toggle.type = "button";
    toggle.title = text("snooze");
    toggle.setAttribute("aria-label", `${text("snooze")}: ${n.title}`);
    toggle.setAttribute("aria-expanded", "false");
    const menu = el("span", "livefeed-snooze-menu");
    menu.hidden = true;
    for (const [key, until] of [["snooze_hour", inAnHour], ["snooze_morning", tomorrowMorning]]) {
      const option = el("button", "livefeed-action", text(key));
      option.type = "button";
      option.setAttribute("aria-label", `${text("snooze")} ${text(key)}: ${n.title}`);
      option.addEventListener("click", () => snooze(n.id, until()));
      menu.append(option);
    }
    toggle.addEventListener("click", () => {
      menu.hidden = !menu.hidden;
      toggle.setAttribute("aria-expanded", String(!menu.hidden));
      if (!menu.hidden) menu.firstChild.focus();
    });
    wrap.append(toggle, menu);
    return wrap;
  }

  const inAnHour = () => new Date(Date.now() + 3600 * 1000);

  function tomorrowMorning() {
    const day = new Date();
    day.setDate(day.getDate() + 1);
    day.setHours(8, 0, 0, 0);
    return day;
  }

  function snooze(id, until) {
    api(`${id}/snooze/`, "POST", { until: until.toISOString() })
      .then(() => dropped([id]))
      .catch((error) => {
        console.error(error);
        setOutcome(id, "failed", text("snooze_failed"));
      });
  }

  // Snoozed or expired, here or in another tab: gone from the inbox and the toasts.
  function removed(data) {
    dropped(Array.isArray(data?.ids) ? data.ids : []);
    setCounts(data);
  }

  function dropped(ids) {
    for (const id of ids) {
      const li = items.get(id);
      if (li?.contains(document.activeElement)) ((nextItem(li) || previousItem(li))?.firstChild ?? panel).focus();
      li?.remove();
      items.delete(id);
      for (const node of toastsOf(id)) node.remove();
    }
    refreshList();
  }

  // Events -------------------------------------------------------------------
  function notified(n, fresh) {
    if (typeof n !== "object" || n === null) return;
    // A user's event carries the exact counts, also when it is a resend of one
    // this page has; group and broadcast events carry none: count locally.
    if (typeof n.unread_count === "number") setCounts(n);
    else if (fresh && !(n.id != null && n.id <= rendered)) {
      setUnread(unread + 1);
      setUnseen(unseen + 1);
    }
    if (!fresh) {
      const li = items.get(n.id);
      if (li && !n.read_at) setUnreadAgain(li); // resent as unread
      return;
    }
    if (n.id != null) newest = Math.max(newest, n.id);
    changedUpTo = Math.max(changedUpTo, Date.parse(n.updated_at) || 0);
    if (loaded) {
      items.get(n.id)?.remove(); // a fold or a snooze back: its row moves to the top
      list.prepend(render(n));
      refreshList();
    }
    toast(n);
  }

  function readElsewhere(data) {
    for (const id of Array.isArray(data?.ids) ? data.ids : []) {
      const li = items.get(id);
      if (li) setRead(li);
    }
    for (const id of Array.isArray(data?.unread_ids) ? data.unread_ids : []) {
      const li = items.get(id); // marked unread in another tab or on the inbox page
      if (li) setUnreadAgain(li);
    }
    // A group's "read for all" has no per-user count: ask for ours.
    if (typeof data?.unread_count === "number") setCounts(data);
    else api("?limit=1").catch(console.error);
  }

  // The server could not replay what this page missed (its log moved on):
  // show the unread notifications newer than any this page knows, or folded or
  // back from a snooze since the last change it knows, then reload.
  function catchUp() {
    const since = newest;
    const changed = changedUpTo;
    api(`?unread=1&limit=${PAGE}`)
      .then((body) => {
        for (const n of body.results.reverse()) {
          if (n.id > since || Date.parse(n.updated_at) > changed) stream.dispatch("notification", n);
        }
        if (loaded) load(true);
      })
      .catch(console.error);
  }

  stream.tap((name, data, fresh) => {
    if (name === "notification") notified(data, fresh);
    else if (name === "read") readElsewhere(data);
    else if (name === "removed") removed(data);
    else if (name === "reset") catchUp();
  });
  stream.watch(showConnection);

  // What a person must be told (issue 13) ------------------------------------
  const notice = $(".livefeed-notice");
  const alert = $(".livefeed-alert");
  const readAll = $(".livefeed-readall");

  // The dot's colour is not enough: any state but "live" (and the first
  // "connecting") is said in words next to the bell, with a way out when signed out.
  function showConnection(state) {
    conn.dataset.state = state;
    conn.title = conn.firstChild.textContent = text(state);
    notice.hidden = state === "open" || state === "connecting";
    if (state !== "signed-out" || !cfg.loginUrl) return notice.replaceChildren(text(state));
    const login = new URL(cfg.loginUrl, location.href);
    login.searchParams.set("next", location.pathname + location.search);
    const link = el("a", "livefeed-signin", text(state));
    link.href = login.pathname + login.search;
    notice.replaceChildren(link);
  }

  // An optimistic change the server never got is taken back where the person
  // sees it, with a message, instead of leaving a badge that jumps back later.
  // A row taken out (archived) goes back where it was.
  function undoable(rows) {
    const before = unread;
    const was = rows.map((li) => ({ li, unread: li.classList.contains("livefeed-unread"), next: nextItem(li) }));
    return (error) => {
      console.error(error);
      setUnread(before);
      for (const { li, unread: wasUnread, next } of was) {
        if (!li.isConnected) {
          list.insertBefore(li, next?.parentNode === list ? next : null);
          items.set(Number(li.dataset.id), li);
        }
        if (wasUnread) setUnreadAgain(li);
        else setRead(li);
      }
      refreshList();
      say(text("action_error"));
    };
  }

  const done = () => say("");

  function say(message) {
    alert.textContent = message;
    alert.hidden = !message;
  }

  function offerRetry() {
    const again = el("button", "livefeed-retry", text("retry"));
    again.type = "button";
    again.addEventListener("click", () => {
      failed = exhausted = false;
      load(!loaded);
      panel.focus(); // the button goes with the message
    });
    more.replaceChildren(`${text("load_error")} `, again);
  }

  function syncReadAll() {
    if (readAll === document.activeElement && !unread) panel.focus();
    readAll.hidden = !unread;
  }

  const named = (key, li) => text(key).replace("{title}", li.dataset.title || "");

  // A row says whether it opens a link; one without is read by a click or Enter.
  function decorate(li, n, href) {
    li.dataset.title = n.title ?? "";
    if (!href) return;
    const go = el("span", "livefeed-go", "→");
    go.setAttribute("aria-hidden", "true");
    li.firstChild.append(go, el("span", "livefeed-sr", text("opens")));
  }

  list.addEventListener("keydown", (event) => {
    const main = event.target.closest?.("div.livefeed-main");
    if (event.key === "Enter" && main) markRead(Number(main.parentNode.dataset.id));
  });

  // A bell and an admin people enjoy (issue 13) --------------------------------
  const nextItem = (li) => sibling(li, "nextElementSibling");
  const previousItem = (li) => sibling(li, "previousElementSibling");

  function sibling(li, way) {
    let node = li[way];
    while (node && !node.classList.contains("livefeed-item")) node = node[way]; // past section headings
    return node;
  }

  // The round button at a row's end: a dot marks it read, a ring marks it unread again.
  function readToggle(li) {
    const unreadNow = li.classList.contains("livefeed-unread");
    const button = el("button", unreadNow ? "livefeed-mark" : "livefeed-unmark");
    button.type = "button";
    button.title = text(unreadNow ? "mark_read" : "mark_unread");
    button.setAttribute("aria-label", named(unreadNow ? "mark_read_named" : "mark_unread_named", li));
    const old = li.querySelector(":scope > .livefeed-mark, :scope > .livefeed-unmark");
    if (!old) return li.append(button);
    const focused = old === document.activeElement;
    old.replaceWith(button);
    if (focused) button.focus(); // the button changed under the pointer: the focus stays
  }

  function markUnread(id) {
    const li = items.get(id);
    if (!li || li.classList.contains("livefeed-unread")) return;
    const undo = undoable([li]);
    setUnreadAgain(li);
    setUnread(unread + 1); // the answer and the "read" event bring the true count
    api(`${id}/unread/`, "POST").then(done, undo);
  }

  function archiveButton(n) {
    const button = el("button", "livefeed-action livefeed-archive"); // a box, drawn in CSS
    button.type = "button";
    button.title = text("archive");
    button.setAttribute("aria-label", `${text("archive")}: ${n.title}`);
    return button;
  }

  // Gone at once; the server's "removed" event takes it from the other tabs.
  function archive(id) {
    const li = items.get(id);
    if (!li) return;
    const undo = undoable([li]);
    const wasUnread = li.classList.contains("livefeed-unread");
    dropped([id]);
    if (wasUnread) setUnread(unread - 1);
    api(`${id}/archive/`, "POST").then(done, undo);
  }

  // All and Unread: a tab list (arrows, Home and End move and choose). A row read
  // while Unread is shown stays, marked read, so nothing jumps from under the
  // pointer and it can be marked unread again; it leaves when Unread is next shown.
  const tabs = [...root.querySelectorAll(".livefeed-tab")];

  function choose(tab) {
    for (const other of tabs) {
      other.setAttribute("aria-selected", String(other === tab));
      other.tabIndex = other === tab ? 0 : -1;
    }
    scroller.setAttribute("aria-labelledby", tab.id);
    if (tab.dataset.filter === filter) return;
    filter = tab.dataset.filter;
    list.replaceChildren(); // never one tab's rows under the other's name
    items.clear();
    loaded = failed = exhausted = false;
    load(true);
  }

  for (const tab of tabs) tab.addEventListener("click", () => choose(tab));
  root.querySelector(".livefeed-tabs").addEventListener("keydown", (event) => {
    const at = tabs.indexOf(event.target);
    const moves = { ArrowLeft: at - 1, ArrowRight: at + 1, Home: 0, End: tabs.length - 1 };
    if (at < 0 || !(event.key in moves)) return;
    event.preventDefault();
    const tab = tabs[(moves[event.key] + tabs.length) % tabs.length];
    tab.focus();
    choose(tab);
  });

  window.livefeed = Object.freeze({
    ...base,
    open,
    close: () => close(false),
  });
  stream.start();
})();
