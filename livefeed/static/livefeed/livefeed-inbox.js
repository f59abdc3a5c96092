/* livefeed full-page inbox: keeps the server-rendered page live and its forms in place.
 *
 * Progressive enhancement: without this script every button is a form POST
 * that reloads the page. With it, the buttons call the JSON API with fetch(),
 * and window.livefeed's events add, update and remove rows, so other tabs
 * (and the bell) agree. User content is set with textContent only.
 */
"use strict";
{
  // Turns the server-rendered page into a live one; the page works without it.
  function enhance(root) {
    const list = root.querySelector(".livefeed-inbox-list");
    const blank = root.querySelector("template.livefeed-inbox-row").content.firstElementChild;
    const empty = root.querySelector(".livefeed-inbox-empty");
    const ACTIONS = new Set(["read", "unread", "archive"]);

    function row(id) {
      return list.querySelector(`li[data-id="${Number(id)}"]`);
    }

    const safeUrl = (url) => window.livefeed?.[Symbol.for("livefeed.stream")]?.safeUrl(url) ?? "";
    const shared = window[Symbol.for("livefeed.rows")]; // livefeed-rows.js: who did it, as the bell shows

    // The actor's picture or initials before their name; the name alone without the helper.
    function showActor(li, actor) {
      const slot = li.querySelector(".livefeed-inbox-actor");
      const name = String(actor?.name ?? "");
      if (!shared || !name) {
        const plain = slot.cloneNode(false);
        plain.className = "livefeed-inbox-actor";
        plain.textContent = name;
        return slot.replaceWith(plain);
      }
      slot.replaceWith(shared.actorMark({ name, avatar: actor.avatar }, safeUrl, "livefeed-inbox-actor livefeed-actor"));
    }

    function setCounts(data) {
      if (typeof data?.unread_count !== "number") return; // a group's event has no count of ours
      root.querySelector(".livefeed-inbox-count").textContent = String(data.unread_count);
    }

    function changed() {
      empty.hidden = list.children.length > 0;
    }

    function fill(li, n) {
      li.dataset.id = String(n.id);
      li.dataset.level = String(n.level || "info");
      li.classList.toggle("livefeed-unread", !n.read_at);
      const title = li.querySelector(".livefeed-inbox-title");
      title.textContent = String(n.title ?? "");
      const href = safeUrl(n.url);
      if (href) title.href = href;
      else title.removeAttribute("href");
      li.querySelector(".livefeed-inbox-body").textContent = String(n.body ?? "");
      showActor(li, n.actor);
      const time = li.querySelector("time");
      time.dateTime = String(n.updated_at || n.created_at || "");
      time.textContent = root.dataset.justNow;
      li.querySelector("input[name=id]").value = String(n.id);
    }

    // A new notification, a fold or a resend: the row goes (back) to the top.
    function notified(n) {
      if (typeof n !== "object" || n === null || n.id == null) return;
      const li = row(n.id) || blank.cloneNode(true);
      fill(li, n);
      list.prepend(li);
      setCounts(n);
      changed();
    }

    function read(data) {
      for (const id of Array.isArray(data?.ids) ? data.ids : []) row(id)?.classList.remove("livefeed-unread");
      for (const id of Array.isArray(data?.unread_ids) ? data.unread_ids : []) row(id)?.classList.add("livefeed-unread");
      setCounts(data);
    }

    function removed(data) {
      for (const id of Array.isArray(data?.ids) ? data.ids : []) row(id)?.remove();
      setCounts(data);
      changed();
    }

    async function act(action, id) {
      const response = await fetch(`${root.dataset.apiUrl}${Number(id)}/${action}/`, {
        method: "POST",
        credentials: "same-origin",
        headers: { "X-CSRFToken": root.dataset.csrfToken, Accept: "application/json" },
      });
      if (!response.ok) throw new Error(`livefeed: ${action} answered ${response.status}`);
      const data = await response.json();
      if (action === "archive") removed(data);
      else read(data);
    }

    for (const li of list.children) {
      const slot = li.querySelector(".livefeed-inbox-actor");
      if (slot.textContent) showActor(li, { name: slot.textContent, avatar: slot.dataset.avatar });
    }

    list.addEventListener("submit", (event) => {
      const action = event.submitter?.value;
      if (!ACTIONS.has(action)) return; // let the browser post it
      event.preventDefault();
      act(action, event.target.elements.id.value).catch(console.error);
    });

    if (window.livefeed) {
      window.livefeed.on("notification", notified);
      window.livefeed.on("read", read);
      window.livefeed.on("removed", removed);
    }
  }

  const page = document.querySelector("[data-livefeed-inbox]");
  if (page) enhance(page);
}
