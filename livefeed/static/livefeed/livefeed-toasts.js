/* livefeed toasts: the stack in the corner, how long each stays, and bursts.
 *
 * The widget (livefeed.js) builds each notification's toast; this module shows
 * it: a close button, a timer paused while the toast is hovered or focused, at
 * most MAX_TOASTS at once. More than STORM_SIZE within STORM_MS collapse into
 * one summary ("6 new notifications" and a Show button) that wears the most
 * severe level among them. Loaded after livefeed-rows.js, before livefeed.js.
 */
"use strict";
{
  const STORM_SIZE = 3; // more toasts than this within STORM_MS become one summary
  const STORM_MS = 1000;
  const MAX_TOASTS = 4;

  // container: the aria-live element the toasts go in; timeout: ms each stays;
  // words: {dismiss, show, level(level), storm(count)}; showAll(): opens the inbox.
  function createToasts(container, { timeout, words, showAll }) {
    const { el, levelOf, LEVELS } = window[Symbol.for("livefeed.rows")];
    let recent = []; // {at, node} of the toasts shown in the last STORM_MS
    let summary = null;
    let lastArrival = 0;

    function show(node, level) {
      node.dataset.level = level;
      const dismiss = el("button", "livefeed-toast-close", "×");
      dismiss.type = "button";
      dismiss.setAttribute("aria-label", words.dismiss);
      dismiss.addEventListener("click", () => node.remove());
      node.append(dismiss);
      let left = timeout;
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
      container.append(node);
      while (container.children.length > MAX_TOASTS) container.firstElementChild.remove();
      sync();
      return () => {
        clearTimeout(timer);
        left = timeout;
        running = false;
        sync();
      };
    }

    // One notification of this level: build() makes its toast, unless it joins a burst's summary.
    function add(level, build) {
      const now = Date.now();
      const burst = now - lastArrival < STORM_MS;
      lastArrival = now;
      if (burst && summary?.node.isConnected) {
        summary.label.lastChild.textContent = words.storm(++summary.count);
        severer(summary, level);
        return summary.restart();
      }
      recent = recent.filter((item) => now - item.at < STORM_MS);
      if (recent.length < STORM_SIZE) {
        const node = build();
        show(node, levelOf(level));
        recent.push({ at: now, node });
        return;
      }
      const levels = recent.map((item) => item.node.dataset.level);
      for (const item of recent) item.node.remove();
      summary = { count: recent.length + 1, node: el("div", "livefeed-toast livefeed-summary") };
      recent = [];
      summary.label = el("p", "livefeed-toast-title");
      summary.label.append(el("span", "livefeed-sr", `${words.level("info")}: `), el("span", "", words.storm(summary.count)));
      const action = el("button", "livefeed-toast-action", words.show);
      action.type = "button";
      action.addEventListener("click", () => {
        summary.node.remove();
        showAll();
      });
      summary.node.append(summary.label, action);
      summary.restart = show(summary.node, "info");
      for (const other of [...levels, level]) severer(summary, other);
    }

    // A burst's summary wears the most severe level among its notifications.
    function severer(summary, level) {
      const worse = LEVELS.indexOf(levelOf(level)) > LEVELS.indexOf(summary.node.dataset.level);
      if (!worse) return;
      summary.node.dataset.level = levelOf(level);
      summary.label.firstChild.textContent = `${words.level(levelOf(level))}: `;
    }

    return { add };
  }

  Object.defineProperty(window, Symbol.for("livefeed.toasts"), { value: Object.freeze({ createToasts }) });
}
