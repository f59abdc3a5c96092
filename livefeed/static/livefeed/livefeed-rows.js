/* livefeed rows: what the bell (livefeed.js) and the inbox page (livefeed-inbox.js) draw alike.
 *
 * Who did it (the actor's avatar, or initials in a coloured circle), which day a
 * row belongs to (Today or Earlier, by the reader's own clock), the badge's
 * text, the levels, and el(), which sets text and never HTML. Loaded before either script; it reaches no server and holds no state.
 * The pure parts are tested in Node (tests/js/rows.test.mjs).
 */
"use strict";
{
  const LEVELS = ["info", "success", "warning", "error"]; // from the least severe
  const levelOf = (level) => (LEVELS.includes(level) ? level : "info");

  function el(tag, className, content) {
    const node = document.createElement(tag);
    node.className = className;
    if (content != null) node.textContent = content; // text, never HTML
    return node;
  }

  // Up to two letters of the name, one per word: "Ada Lovelace" -> "AL".
  function initials(name) {
    const words = String(name ?? "").trim().split(/\s+/).filter(Boolean);
    const letters = words.slice(0, 2).map((word) => [...word][0].toLocaleUpperCase());
    return letters.join("") || "?";
  }

  // The same name always gets the same colour. White text on it keeps at least
  // WCAG's 4.5:1 for every hue (the test walks all 360).
  function colourOf(name) {
    let hash = 0;
    for (const char of String(name ?? "")) hash = (Math.imul(hash, 31) + char.codePointAt(0)) | 0;
    return `hsl(${Math.abs(hash) % 360} 55% 30%)`;
  }

  // "today" when the moment falls on the reader's local date of now, else "earlier".
  function dayOf(iso, now = new Date()) {
    const moment = new Date(iso);
    if (Number.isNaN(moment.getTime())) return "earlier";
    const same = (a, b) => a.getFullYear() === b.getFullYear() && a.getMonth() === b.getMonth() && a.getDate() === b.getDate();
    return same(moment, now) ? "today" : "earlier";
  }

  // The badge's one rule; the server renders the same (templatetags/livefeed.py badge_text).
  function badgeText(count, max) {
    return count > max ? `${max}+` : String(Math.max(0, count));
  }

  // The actor's picture, or their initials: decoration (aria-hidden) next to the name in text.
  function actorMark(actor, safeUrl, className = "livefeed-actor") {
    const name = String(actor?.name ?? "");
    const wrap = el("span", className);
    const circle = el("span", "livefeed-avatar", initials(name));
    circle.setAttribute("aria-hidden", "true");
    circle.style.backgroundColor = colourOf(name);
    const src = actor?.avatar ? safeUrl(actor.avatar) : "";
    if (src) {
      const picture = el("img", "");
      picture.alt = "";
      picture.src = src;
      picture.addEventListener("error", () => picture.remove()); // the initials show through
      circle.append(picture);
    }
    wrap.append(circle, el("span", "livefeed-actor-name", name));
    return wrap;
  }

  // A heading over the first row of each day's section, rows being newest first
  // (by data-when, where each row sits in the list): one call after any change.
  function placeSections(list, names, now = new Date()) {
    for (const old of list.querySelectorAll(":scope > .livefeed-section")) old.remove();
    let last = "";
    for (const li of [...list.children]) {
      const day = dayOf(li.dataset.when, now);
      if (day === last) continue;
      last = day;
      const section = el("li", "livefeed-section");
      section.append(el("h3", "", names[day]));
      li.before(section);
    }
  }

  const rows = Object.freeze({ LEVELS, levelOf, el, initials, colourOf, dayOf, badgeText, actorMark, placeSections });
  Object.defineProperty(window, Symbol.for("livefeed.rows"), { value: rows });
}
