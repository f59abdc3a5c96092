// livefeed-rows.js's pure parts: initials, their colour, Today/Earlier and the badge's text.
// How rows look in a browser is in tests/test_browser_bell.py.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import vm from "node:vm";

const SOURCE = readFileSync(new URL("../../livefeed/static/livefeed/livefeed-rows.js", import.meta.url), "utf8");
const window = {};
vm.runInNewContext(SOURCE, { window });
const rows = window[Symbol.for("livefeed.rows")];

test("initials take one letter of each of the first two words", () => {
  assert.equal(rows.initials("Ada Lovelace"), "AL");
  assert.equal(rows.initials("  grace  brewster murray hopper "), "GB");
  assert.equal(rows.initials("bob"), "B");
  assert.equal(rows.initials("Émile Zola"), "ÉZ");
  assert.equal(rows.initials("😀 Smile"), "😀S"); // a whole character, not half of one
  assert.equal(rows.initials(""), "?");
  assert.equal(rows.initials(null), "?");
});

// WCAG 2 contrast of white text on an "hsl(h s% l%)" colour.
function contrastWithWhite(colour) {
  const [h, s, l] = colour.match(/[\d.]+/g).map(Number);
  const a = (s / 100) * Math.min(l / 100, 1 - l / 100);
  const channel = (n) => {
    const k = (n + h / 30) % 12;
    const value = l / 100 - a * Math.max(-1, Math.min(k - 3, 9 - k, 1));
    return value <= 0.04045 ? value / 12.92 : ((value + 0.055) / 1.055) ** 2.4;
  };
  const luminance = 0.2126 * channel(0) + 0.7152 * channel(8) + 0.0722 * channel(4);
  return 1.05 / (luminance + 0.05);
}

test("a name always gets the same colour, and white initials on any of them are readable", () => {
  assert.equal(rows.colourOf("Ada Lovelace"), rows.colourOf("Ada Lovelace"));
  const names = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi"];
  assert.ok(new Set(names.map(rows.colourOf)).size >= 6, "names are told apart by colour");
  const template = rows.colourOf("alice");
  for (let hue = 0; hue < 360; hue += 1) {
    const colour = template.replace(/^hsl\(\d+/, `hsl(${hue}`);
    assert.ok(contrastWithWhite(colour) >= 4.5, `${colour}: ${contrastWithWhite(colour).toFixed(2)}:1`);
  }
});

test("today is the reader's local date of now; anything before its midnight is earlier", () => {
  const now = new Date(2026, 11, 16, 14, 30);
  assert.equal(rows.dayOf(new Date(2026, 11, 16, 0, 0, 1).toISOString(), now), "today");
  assert.equal(rows.dayOf(new Date(2026, 11, 16, 23, 59).toISOString(), now), "today");
  assert.equal(rows.dayOf(new Date(2026, 11, 15, 23, 59, 59).toISOString(), now), "earlier");
  assert.equal(rows.dayOf(new Date(2025, 11, 16, 14, 30).toISOString(), now), "earlier"); // same day, last year
  assert.equal(rows.dayOf(new Date(2026, 10, 16, 14, 30).toISOString(), now), "earlier"); // same date, last month
  assert.equal(rows.dayOf(new Date(2026, 11, 9, 14, 30).toISOString(), now), "earlier"); // same weekday, last week
  assert.equal(rows.dayOf("not a date", now), "earlier");
});

test("the badge counts up to its maximum, then says max+", () => {
  assert.equal(rows.badgeText(0, 99), "0");
  assert.equal(rows.badgeText(9, 99), "9");
  assert.equal(rows.badgeText(10, 99), "10");
  assert.equal(rows.badgeText(99, 99), "99");
  assert.equal(rows.badgeText(100, 99), "99+");
  assert.equal(rows.badgeText(-3, 99), "0");
});
