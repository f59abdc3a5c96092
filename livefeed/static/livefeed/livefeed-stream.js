/* livefeed stream: the one connection a browser's tabs share, and window.livefeed.
 *
 * Configured by data-* on [data-livefeed] (livefeed/stream.html, or the widget's
 * root in livefeed/widget.html); does nothing without it. Browsers allow six
 * HTTP/1.1 connections per host across all tabs, so a stream per tab would stall
 * the site: one tab, the leader, holds the EventSource. It is elected with Web
 * Locks (BroadcastChannel heartbeats where those are missing) and relays every
 * event and its id to the other tabs; a new leader resumes after the last relayed
 * id, losing nothing. Every event is dispatched as a `livefeed:<name>` DOM event,
 * once per event id and, for notifications, once per notification id and
 * `updated_at`: a fold or a snooze coming back is news again, a resend is not.
 *
 * The stream starts at once, unless the root has data-widget: then the widget
 * (livefeed.js) starts it after it has hooked in, so it misses no event.
 */
"use strict";
{
  const CHANNEL = /^[A-Za-z0-9_.-]{1,90}$/;
  const INTERNALS = Symbol.for("livefeed.stream"); // how the widget reaches the hooks below
  const words = (value) => (value || "").split(/\s+/).filter(Boolean);

  // An http(s) URL to link to, or "" for javascript:, data: and garbage.
  function safeUrl(url) {
    try {
      const parsed = new URL(url, location.href);
      return url && ["http:", "https:"].includes(parsed.protocol) ? parsed.href : "";
    } catch {
      return "";
    }
  }

  function createStream(root) {
    const cfg = root.dataset;
    const names = new Set(["message", "notification", "read", "removed", "reset", ...words(cfg.events)]);
    const channels = new Set(words(cfg.channels));
    const relay = "BroadcastChannel" in window ? new BroadcastChannel("livefeed") : null;
    const me = Math.random().toString(36).slice(2);
    const taps = []; // see every event before page code does: the widget's counts
    const watchers = []; // hear every change of the connection's state
    let lastId = cfg.lastEventId || "";
    let leader = false;
    let source = null;
    let state = "";
    let attempt = 0;
    let retryTimer = 0;
    let signedOut = false; // the server answered 401: wait for a sign of a new session

    // Delivery ------------------------------------------------------------------
    const delivered = new Set(); // event ids delivered lately
    const known = new Map(); // notification id -> its updated_at this page has: dispatched once each
    let previousId = ""; // lastEventId of the stream's previous event

    // Resuming from an earlier position (a follower's new channel) replays events
    // this tab has passed on already.
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

    // A fold or a snooze coming back keeps the id and moves updated_at on: news,
    // which the widget shows in the row it has. A resend as unread keeps both.
    function firstSight(n) {
      if (typeof n !== "object" || n === null || n.id == null) return true;
      const had = known.get(n.id);
      const again = had !== undefined && (!n.updated_at || had === n.updated_at || had === "");
      remember(n.id, n.updated_at);
      return !again;
    }

    // Without updated_at (a caller of the older remember(id)) any version counts as had.
    function remember(id, updatedAt) {
      if (updatedAt || !known.has(id)) known.set(id, updatedAt || "");
    }

    function dispatch(name, data) {
      const fresh = name !== "notification" || firstSight(data);
      for (const tap of taps) tap(name, data, fresh);
      if (!fresh) return; // a resend or replay of a notification this page has
      for (const target of [root, document]) {
        target.dispatchEvent(new CustomEvent(`livefeed:${name}`, { detail: data }));
      }
    }

    function deliver({ name, data: raw }) {
      let data = raw;
      try {
        data = JSON.parse(raw);
      } catch {
        // not JSON: hand the text on as it came
      }
      dispatch(name, data);
    }

    function advance(id, name) {
      // A reset's id is the log's newest, below this page's id after a database
      // restore: resume from it, and forget the ids of the log that is gone.
      if (name === "reset" && id) {
        lastId = id;
        delivered.clear();
      } else if (id && !(Number(id) <= Number(lastId))) lastId = id;
    }

    function status(next) {
      if (leader) relay?.postMessage({ type: "status", state: next, from: me });
      if (next === state) return;
      state = next;
      for (const watcher of watchers) watcher(state);
    }

    // The EventSource, held by the leader --------------------------------------
    function streamUrl() {
      const url = new URL(cfg.streamUrl, location.href);
      for (const name of channels) url.searchParams.append("channel", name);
      if (lastId) url.searchParams.set("lastEventId", lastId);
      return url;
    }

    function connect() {
      clearTimeout(retryTimer);
      source?.close();
      signedOut = false;
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
        // The browser reconnects by itself: say so at once, so a page is never
        // silently stale (before the first open it is still "connecting").
        if (es.readyState !== EventSource.CLOSED) return status(state === "connecting" ? state : "reconnecting");
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
      // Signed out: stay offline, without asking again, until a tab of this
      // browser opens a page (then perhaps signed in again).
      if (code === 401) {
        signedOut = true;
        return status("signed-out"); // the widget asks the user to sign in again
      }
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

    // Leader election and relay --------------------------------------------------
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

    function heard({ data: m }) {
      if (m.type === "want" && leader) {
        const since = /^\d+$/.test(m.since || "") ? m.since : "";
        want(m.names, m.channels.filter((channel) => CHANNEL.test(channel)), since);
        if (signedOut) connect(); // a page of this site opened: signed in again?
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
    }

    // Without Web Locks (older browsers, plain-http sites) the leader beats on the
    // BroadcastChannel; when the beat stops a follower takes over, and of two
    // leaders the one with the smaller id stays.
    function heartbeats() {
      let beat = Date.now() - 2000; // no answer to our "want" within ~1 s: lead
      relay.addEventListener("message", ({ data: m }) => {
        if (m.type === "bye") beat = 0;
        else if (!m.from || (leader && m.from > me)) return;
        if (leader) resign(); // and follow the other one: heard from just now
        beat = Date.now();
      });
      addEventListener("pagehide", () => leader && relay.postMessage({ type: "bye" }));
      const tick = () => {
        if (leader) relay.postMessage({ type: "beat", from: me });
        else if (Date.now() - beat > 2500) lead();
        setTimeout(tick, 500 + Math.random() * 500);
      };
      tick();
    }

    function start() {
      relay?.addEventListener("message", heard);
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
    }

    // The public API ---------------------------------------------------------------
    function on(name, handler) {
      const listener = (event) => handler(event.detail, event);
      document.addEventListener(`livefeed:${name}`, listener);
      want([name], []);
      if (!leader) ask();
      return () => document.removeEventListener(`livefeed:${name}`, listener);
    }

    function subscribe(channel, handlers = {}) {
      want([], [channel]);
      const offs = Object.entries(handlers).map(([name, handler]) => on(name, handler));
      if (!leader) ask();
      return () => offs.forEach((off) => off());
    }

    const internals = {
      start,
      tap: (hook) => taps.push(hook), // hook(name, data, fresh) before the DOM event
      watch: (hook) => watchers.push(hook), // hook(state): "connecting", "open", "reconnecting", "offline", "signed-out"
      remember, // (id, updated_at): a notification the page got another way (the inbox)
      dispatch, // an event the page learned of another way (a catch-up)
      safeUrl, // the one check of every link the bell and the inbox page draw
    };
    const api = { on, subscribe };
    Object.defineProperty(api, INTERNALS, { value: internals });
    return { api: Object.freeze(api), internals };
  }

  const root = document.querySelector("[data-livefeed]");
  if (root && !window.livefeed) {
    const stream = createStream(root);
    window.livefeed = stream.api;
    if (!("widget" in root.dataset)) stream.internals.start();
  }
}
