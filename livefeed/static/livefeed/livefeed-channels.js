/* livefeed streamed answers: render an answer into an element as its tokens arrive.
 *
 * Load it after the widget (livefeed/widget.html) or the stream alone
 * (livefeed/stream.html); it adds two functions to window.livefeed:
 *   livefeed.answer(channel, element)      over the page's one shared stream
 *                                          (subscribe first, then start the answer)
 *   livefeed.readAnswer(url, init, element) POSTs with fetch() and reads the
 *                                          answer from that response's own body
 * Both resolve to {text, status} at the `done` event (status "complete" or
 * "failed"). Text is appended as Text nodes: never parsed as HTML.
 */
"use strict";
{
  const base = window.livefeed;

  // One renderer for both paths: what a token and the final done do to the element.
  function renderer(element, resolve) {
    let text = "";
    element.setAttribute("aria-busy", "true");
    return {
      token(detail) {
        text += detail.text;
        element.append(detail.text);
      },
      done(detail) {
        element.removeAttribute("aria-busy");
        element.dataset.status = detail.status;
        resolve({ text, status: detail.status });
      },
    };
  }

  function answer(channel, element) {
    if (!base?.subscribe) {
      throw new Error("livefeed.answer() needs the stream: include livefeed/widget.html (or stream.html) first.");
    }
    return new Promise((resolve) => {
      const render = renderer(element, resolve);
      // Every answer's events are named token/done: keep this channel's only.
      const mine = (handle) => (detail) => detail?.answer === channel && handle(detail);
      const off = base.subscribe(channel, {
        token: mine(render.token),
        done: mine((detail) => {
          off();
          render.done(detail);
        }),
      });
    });
  }

  async function readAnswer(url, init, element) {
    const headers = { Accept: "text/event-stream", ...init?.headers };
    const response = await fetch(url, { method: "POST", credentials: "same-origin", ...init, headers });
    if (!response.ok) throw new Error(`livefeed: ${url} answered ${response.status}`);
    let result;
    const render = renderer(element, (value) => (result = value));
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    let event = { type: "message", data: [] };
    while (!result) {
      const { value: chunk, done } = await reader.read();
      if (done) break;
      const parts = (buffer + chunk).split(/\r\n|\r|\n/);
      buffer = parts.pop(); // a partial line waits for the next chunk
      for (const line of parts) {
        if (line === "") {
          if (event.data.length && render[event.type]) render[event.type](JSON.parse(event.data.join("\n")));
          event = { type: "message", data: [] };
        } else if (line.startsWith("event:")) {
          event.type = line.slice(6).trim();
        } else if (line.startsWith("data:")) {
          event.data.push(line.slice(5).replace(/^ /, ""));
        } // comments (":") and other fields carry nothing for an answer
      }
    }
    reader.cancel();
    if (!result) render.done({ status: "failed" }); // the connection ended before done
    return result;
  }

  if (base) window.livefeed = Object.freeze({ ...base, answer, readAnswer });
}
