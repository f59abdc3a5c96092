// livefeed-stream.js in fake tabs of one fake browser: leader election, relay,
// resume, backoff and dedupe, without a browser. What only a browser shows is
// in tests/test_browser.py.
import assert from "node:assert/strict";
import { test } from "node:test";

import { Browser, settle } from "./browser.mjs";

// Objects made inside a tab belong to its realm: compare them as JSON.
const plain = (value) => JSON.parse(JSON.stringify(value));
const heard = (tab, name) => plain(tab.heard.filter(([event]) => event === name).map(([, detail]) => detail));

async function openTabs(browser, count, dataset = {}) {
  const tabs = Array.from({ length: count }, () => browser.open(dataset));
  await settle();
  return tabs;
}

test("one tab holds the only EventSource and every tab hears each event once", async () => {
  const browser = new Browser();
  const tabs = await openTabs(browser, 3);
  assert.equal(browser.sources.length, 1);
  const [source] = browser.sources;
  assert.equal(source.tab, tabs[0]);
  source.open();
  source.send("notification", { id: 5, title: "Hi" }, 11);
  await settle();
  for (const tab of tabs) {
    assert.deepEqual(heard(tab, "notification"), [{ id: 5, title: "Hi" }]);
    assert.equal(tab.state, "open");
  }
});

test("when the leader tab closes the next one leads and resumes after the last relayed id", async () => {
  const browser = new Browser();
  const [first, second, third] = await openTabs(browser, 3, { lastEventId: "40" });
  browser.sources[0].send("message", { n: 1 }, 41);
  await settle();
  first.close();
  await settle();
  assert.equal(browser.live.length, 1);
  const [next] = browser.live;
  assert.equal(next.tab, second);
  assert.equal(next.url.searchParams.get("lastEventId"), "41");
  next.send("message", { n: 2 }, 42);
  await settle();
  assert.deepEqual(heard(third, "message"), [{ n: 1 }, { n: 2 }]);
});

test("without Web Locks heartbeats elect one leader, and a follower takes over when it leaves", async () => {
  const browser = new Browser();
  const tabs = await openTabs(browser, 2, { withLocks: false, lastEventId: "7" });
  await browser.clock.tick(10_000);
  assert.equal(browser.live.length, 1);
  const leader = browser.live[0].tab;
  browser.live[0].send("message", "hello", 8);
  await settle();
  leader.close();
  await browser.clock.tick(5_000);
  assert.equal(browser.live.length, 1);
  const [next] = browser.live;
  assert.equal(next.tab, tabs.find((tab) => tab !== leader));
  assert.equal(next.url.searchParams.get("lastEventId"), "8");
});

test("without Web Locks, of two leaders that hear each other at last, one steps down", async () => {
  const browser = new Browser();
  browser.partitioned = true;
  await openTabs(browser, 2, { withLocks: false });
  await browser.clock.tick(5_000);
  assert.equal(browser.live.length, 2);
  browser.partitioned = false;
  await browser.clock.tick(5_000);
  assert.equal(browser.live.length, 1);
  assert.equal(browser.sources.length, 2, "the one that stepped down follows, and does not lead again");
});

test("every event becomes a livefeed:<name> DOM event on the root, then on document", async () => {
  const browser = new Browser();
  const [tab] = await openTabs(browser, 1);
  const order = [];
  tab.root.addEventListener("livefeed:message", () => order.push("root"));
  tab.document.addEventListener("livefeed:message", () => order.push("document"));
  browser.sources[0].send("message", { a: 1 }, 1);
  browser.sources[0].send("message", "not json", 2);
  await settle();
  assert.deepEqual(order, ["root", "document", "root", "document"]);
  assert.deepEqual(heard(tab, "message"), [{ a: 1 }, "not json"]);
});

test("a follower's on() and subscribe() reach the leader's stream, resuming where the follower was", async () => {
  const browser = new Browser();
  const [leader] = await openTabs(browser, 1, { lastEventId: "10" });
  const first = browser.sources[0];
  first.send("message", "eleven", 11);
  first.send("message", "thirteen", 13); // 12 is on a channel nobody has asked for yet
  await settle();
  const [follower] = await openTabs(browser, 1, { lastEventId: "10" }); // rendered before 11
  const progress = [];
  follower.livefeed.subscribe("job.1", { progress: (detail) => progress.push(plain(detail)) });
  await settle();
  const [again] = browser.live;
  assert.notEqual(again, first);
  assert.deepEqual(again.url.searchParams.getAll("channel"), ["job.1"]);
  assert.equal(again.url.searchParams.get("lastEventId"), "10");
  // The server replays from 10: what the tabs had is not dispatched again.
  again.send("message", "eleven", 11);
  again.send("progress", { done: 1 }, 12);
  again.send("message", "thirteen", 13);
  await settle();
  assert.deepEqual(progress, [{ done: 1 }]);
  assert.deepEqual(heard(leader, "message"), ["eleven", "thirteen"]);
  assert.deepEqual(heard(leader, "progress"), [{ done: 1 }]);
});

test("an event without an id field is never taken for a repeat", async () => {
  const browser = new Browser();
  const [tab] = await openTabs(browser, 1);
  const [source] = browser.sources;
  source.send("message", "a", 5);
  source.send("message", "b"); // no id field: the event keeps the last one
  source.send("message", "c");
  await settle();
  assert.deepEqual(heard(tab, "message"), ["a", "b", "c"]);
});

test("a notification resent under a new event id is dispatched once; the widget's hook still sees its counts", async () => {
  const browser = new Browser();
  const [leader, follower] = await openTabs(browser, 2);
  const [source] = browser.sources;
  source.send("notification", { id: 5, unread_count: 1 }, 20);
  source.send("notification", { id: 5, unread_count: 2 }, 21);
  await settle();
  for (const tab of [leader, follower]) {
    assert.deepEqual(heard(tab, "notification"), [{ id: 5, unread_count: 1 }]);
    assert.deepEqual(plain(tab.tapped), [
      ["notification", { id: 5, unread_count: 1 }, true],
      ["notification", { id: 5, unread_count: 2 }, false],
    ]);
  }
});

test("a notification the widget listed already is no news when its event comes", async () => {
  const browser = new Browser();
  const [tab] = await openTabs(browser, 1);
  tab.stream.remember(9);
  tab.stream.dispatch("notification", { id: 8 }); // a catch-up
  browser.sources[0].send("notification", { id: 9 }, 30);
  browser.sources[0].send("notification", { id: 8 }, 31);
  await settle();
  assert.deepEqual(heard(tab, "notification"), [{ id: 8 }]);
});

test("after the browser gives up (a 502) the leader retries with backoff and resumes", async () => {
  const browser = new Browser();
  const [leader, follower] = await openTabs(browser, 2);
  const [source] = browser.sources;
  source.open();
  source.send("message", "before", 3);
  source.fail();
  await settle();
  assert.equal(follower.state, "offline");
  await browser.clock.tick(499); // the first retry waits 1 s × a jitter of 0.5 to 1
  assert.equal(browser.sources.length, 1);
  await browser.clock.tick(501);
  assert.equal(browser.sources.length, 2);
  assert.equal(browser.sources[1].tab, leader);
  assert.equal(browser.sources[1].url.searchParams.get("lastEventId"), "3");
  browser.sources[1].open();
  await settle();
  assert.equal(follower.state, "open");
});

test("a stream lost after it was open is reconnecting at once, not connecting", async () => {
  const browser = new Browser();
  const [leader, follower] = await openTabs(browser, 2);
  const [source] = browser.sources;
  assert.equal(leader.state, "connecting"); // never open yet
  source.open();
  await settle();
  source.lose(); // the server went away: the browser reconnects by itself
  await settle();
  assert.equal(leader.state, "reconnecting");
  assert.equal(follower.state, "reconnecting");
  source.open();
  await settle();
  assert.equal(follower.state, "open");
});

test("a server refusing a channel (403) gets a stream without the page's channels", async () => {
  const browser = new Browser();
  const [tab] = await openTabs(browser, 1, { channels: "orders secret" });
  assert.deepEqual(browser.sources[0].url.searchParams.getAll("channel"), ["orders", "secret"]);
  browser.status = 403;
  browser.sources[0].fail();
  await browser.clock.tick(1_000);
  assert.equal(browser.sources.length, 2);
  assert.deepEqual(browser.sources[1].url.searchParams.getAll("channel"), []);
  assert.match(tab.errors[0], /a subscribed channel was refused/);
});

test("a leader signed out (401) says so until a newly opened tab, signed in again, brings it back", async () => {
  const browser = new Browser();
  const [leader, follower] = await openTabs(browser, 2);
  browser.status = 401;
  browser.sources[0].fail();
  await browser.clock.tick(60_000);
  assert.equal(browser.sources.length, 1, "no stream while signed out");
  assert.equal(leader.state, "signed-out");
  assert.equal(follower.state, "signed-out");

  browser.status = 200; // signed in again, in a new tab
  const [tab] = await openTabs(browser, 1);
  assert.equal(browser.live.length, 1);
  assert.equal(browser.live[0].tab, leader);
  browser.live[0].open();
  await settle();
  assert.equal(tab.state, "open");
  assert.equal(leader.state, "open");
});

test("a channel name outside A-Za-z0-9_.- throws a TypeError", async () => {
  const browser = new Browser();
  const [tab] = await openTabs(browser, 1);
  assert.throws(() => tab.livefeed.subscribe("no spaces", {}), { name: "TypeError" });
});

test("the stream alone (no widget on the page) starts by itself", async () => {
  const browser = new Browser();
  const tab = browser.open({ alone: true, channels: "orders" });
  await settle();
  assert.equal(browser.live.length, 1);
  assert.deepEqual(Object.keys(tab.livefeed).sort(), ["on", "subscribe"]);
  const orders = [];
  tab.livefeed.on("order.created", (detail) => orders.push(plain(detail)));
  browser.live[0].send("order.created", { pk: 1 }, 2);
  await settle();
  assert.deepEqual(orders, [{ pk: 1 }]);
});

test("a fold or a snooze coming back (same id, later updated_at) reaches the widget and page code again", async () => {
  const browser = new Browser();
  const [tab] = await openTabs(browser, 1);
  const [source] = browser.sources;
  const first = { id: 5, count: 1, updated_at: "2026-11-23T10:00:00Z" };
  const folded = { id: 5, count: 2, updated_at: "2026-11-23T10:05:00Z" };
  source.send("notification", first, 20);
  source.send("notification", folded, 21);
  source.send("notification", folded, 22); // a resend as unread keeps updated_at: no news
  await settle();
  assert.deepEqual(heard(tab, "notification"), [first, folded]);
  assert.deepEqual(
    plain(tab.tapped).map(([, data, fresh]) => [data.count, fresh]),
    [[1, true], [2, true], [2, false]],
  );
});

test("a notification the widget listed with its updated_at is news again only when that moves on", async () => {
  const browser = new Browser();
  const [tab] = await openTabs(browser, 1);
  tab.stream.remember(9, "2026-11-23T10:00:00Z");
  browser.sources[0].send("notification", { id: 9, updated_at: "2026-11-23T10:00:00Z" }, 30);
  browser.sources[0].send("notification", { id: 9, updated_at: "2026-11-23T11:00:00Z" }, 31);
  await settle();
  assert.deepEqual(heard(tab, "notification"), [{ id: 9, updated_at: "2026-11-23T11:00:00Z" }]);
});

test("removed reaches the widget's hook and page code without asking for it", async () => {
  const browser = new Browser();
  const [tab] = await openTabs(browser, 1);
  const [source] = browser.sources;
  source.send("removed", { ids: [5], unread_count: 0, unseen_count: 0 }, 40);
  await settle();
  assert.deepEqual(heard(tab, "removed"), [{ ids: [5], unread_count: 0, unseen_count: 0 }]);
  assert.deepEqual(plain(tab.tapped), [["removed", { ids: [5], unread_count: 0, unseen_count: 0 }, true]]);
});
