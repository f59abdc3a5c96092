// A fake browser profile for livefeed-stream.js: tabs that share Web Locks, a
// BroadcastChannel bus and a clock, each running the real script in its own
// global (node:vm), with an EventSource the test speaks for as the server.
import { readFileSync } from "node:fs";
import vm from "node:vm";

const SOURCE = readFileSync(new URL("../../livefeed/static/livefeed/livefeed-stream.js", import.meta.url), "utf8");
const INTERNALS = Symbol.for("livefeed.stream");

// Let queued microtasks and relayed messages run out.
export async function settle() {
  for (let round = 0; round < 5; round += 1) await new Promise((resolve) => setImmediate(resolve));
}

// Math.random for the tabs: the same sequence every run (mulberry32), so that a
// test of the heartbeats' jitter fails or passes the same way each time.
function seeded(seed) {
  let state = seed;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

class Clock {
  now = 1_000_000;
  timers = new Map();
  seq = 0;

  setTimeout = (callback, ms = 0) => {
    this.seq += 1;
    this.timers.set(this.seq, { at: this.now + ms, callback });
    return this.seq;
  };

  clearTimeout = (id) => this.timers.delete(id);

  // Run every timer due within ms, in order, letting each one's effects settle.
  async tick(ms) {
    const end = this.now + ms;
    for (;;) {
      const due = [...this.timers].filter(([, t]) => t.at <= end).sort((a, b) => a[1].at - b[1].at)[0];
      if (!due) break;
      this.timers.delete(due[0]);
      this.now = due[1].at;
      due[1].callback();
      await settle();
    }
    this.now = end;
  }
}

// Web Locks: the first request holds the lock until its tab closes; the next waits.
class Locks {
  holder = null;
  waiting = [];

  forTab(tab) {
    return { request: (name, callback) => this.request(tab, callback) };
  }

  request(tab, callback) {
    this.waiting.push({ tab, callback });
    this.grant();
    return new Promise(() => {});
  }

  grant() {
    if (this.holder || !this.waiting.length) return;
    const next = this.waiting.shift();
    this.holder = next.tab;
    queueMicrotask(() => next.callback({ name: "livefeed-leader" }));
  }

  release(tab) {
    this.waiting = this.waiting.filter((entry) => entry.tab !== tab);
    if (this.holder === tab) this.holder = null;
    this.grant();
  }
}

function busOf(browser, tab) {
  const { channels } = browser;
  return class FakeBroadcastChannel extends EventTarget {
    constructor(name) {
      super();
      this.name = name;
      this.tab = tab;
      channels.add(this);
    }

    postMessage(message) {
      if (!channels.has(this)) throw new Error("InvalidStateError: the channel is closed");
      if (browser.partitioned) return; // lost: the tabs cannot hear each other for now
      const copy = structuredClone(message);
      for (const other of channels) {
        if (other === this || other.name !== this.name) continue;
        queueMicrotask(() => channels.has(other) && other.dispatchEvent(new MessageEvent("message", { data: copy })));
      }
    }

    close() {
      channels.delete(this);
    }
  };
}

function eventSourceOf(browser, tab) {
  return class FakeEventSource extends EventTarget {
    static CONNECTING = 0;
    static OPEN = 1;
    static CLOSED = 2;

    constructor(url) {
      super();
      this.url = new URL(url);
      this.readyState = 0;
      this.lastEventId = "";
      this.tab = tab;
      browser.sources.push(this);
    }

    close() {
      this.readyState = 2;
    }

    // What the server does:
    open() {
      this.readyState = 1;
      this.dispatchEvent(new Event("open"));
    }

    // Without an id field, an event keeps the id of the one before (the HTML spec).
    send(name, data, id = this.lastEventId) {
      this.lastEventId = String(id);
      const text = typeof data === "string" ? data : JSON.stringify(data);
      this.dispatchEvent(new MessageEvent(name, { data: text, lastEventId: this.lastEventId }));
    }

    // The connection dropped: the browser itself reconnects after `retry`.
    lose() {
      this.readyState = 0;
      this.dispatchEvent(new Event("error"));
    }

    fail() {
      this.readyState = 2;
      this.dispatchEvent(new Event("error"));
    }
  };
}

export class Browser {
  sources = []; // every EventSource any tab opened, oldest first
  channels = new Set();
  clock = new Clock();
  locks = new Locks();
  status = 200; // what the stream URL answers the widget's retry
  partitioned = false; // true: BroadcastChannel messages are lost
  random = seeded(1);

  // Open a tab with the page's data-* (`withLocks: false`: a browser without Web Locks).
  // As with the widget, the tab's hooks are in before the stream starts; `alone`:
  // a page with the stream only (livefeed/stream.html), which starts by itself.
  open({ withLocks = true, alone = false, ...dataset } = {}) {
    if (!alone) dataset.widget = "";
    return new Tab(this, { streamUrl: "/livefeed/stream/", lastEventId: "", ...dataset }, withLocks);
  }

  // The EventSources still open, that is the streams the server holds.
  get live() {
    return this.sources.filter((source) => source.readyState !== 2);
  }
}

class Tab {
  constructor(browser, dataset, withLocks) {
    this.browser = browser;
    this.heard = []; // [name, detail] of every livefeed:* DOM event on document
    this.errors = []; // what the script logged with console.error
    this.root = Object.assign(new EventTarget(), { dataset });
    this.document = Object.assign(new EventTarget(), { querySelector: () => this.root });
    const dispatch = this.document.dispatchEvent.bind(this.document);
    this.document.dispatchEvent = (event) => {
      this.heard.push([event.type.replace(/^livefeed:/, ""), event.detail]);
      return dispatch(event);
    };
    this.window = new EventTarget();
    const { clock } = browser;
    const globals = {
      document: this.document,
      location: { href: "http://testserver/page/" },
      navigator: { locks: withLocks ? browser.locks.forTab(this) : undefined },
      BroadcastChannel: busOf(browser, this),
      EventSource: eventSourceOf(browser, this),
      fetch: async () => ({ status: browser.status }),
      AbortController,
      CustomEvent,
      URL,
      console: { error: (...args) => this.errors.push(args.join(" ")) },
      setTimeout: (callback, ms) => clock.setTimeout(() => this.closed || callback(), ms),
      clearTimeout: clock.clearTimeout,
      Date: { now: () => clock.now },
      Math: Object.assign(Object.create(Math), { random: browser.random }),
      addEventListener: this.window.addEventListener.bind(this.window),
    };
    globals.window = globals;
    this.globals = vm.createContext(globals);
    vm.runInContext(SOURCE, this.globals, { filename: "livefeed-stream.js" });
    this.livefeed = this.globals.livefeed;
    this.stream = this.livefeed?.[INTERNALS];
    this.states = [];
    this.tapped = []; // [name, data, fresh] of every event the widget's hook saw
    if (this.stream && "widget" in dataset) {
      this.stream.watch((state) => this.states.push(state));
      this.stream.tap((...seen) => this.tapped.push(seen));
      this.stream.start();
    }
  }

  get state() {
    return this.states.at(-1);
  }

  // Close the tab: its lock, its channel and its stream go with it.
  close() {
    this.window.dispatchEvent(new Event("pagehide"));
    this.closed = true; // its timers never fire
    for (const source of this.browser.sources) if (source.tab === this) source.close();
    for (const channel of [...this.browser.channels]) if (channel.tab === this) channel.close();
    this.browser.locks.release(this);
  }
}
