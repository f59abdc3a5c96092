// The demo pages of custom channels: a job's progress bar, a streamed answer, a live table.
// Each block wires its page only when its element is there. Each page subscribes
// BEFORE it starts its job or answer, so not one event comes before it listens.
"use strict";
{
  const livefeed = window.livefeed;
  const newId = () => Math.random().toString(36).slice(2, 12);

  function post(url, token, fields) {
    const init = { method: "POST", credentials: "same-origin", headers: { "X-CSRFToken": token } };
    return fetch(url, { ...init, body: new URLSearchParams(fields) }).then((response) => {
      if (!response.ok) throw new Error(`${url} answered ${response.status}`);
      return response;
    });
  }

  // A long job ----------------------------------------------------------------
  const job = document.querySelector("[data-demo-job]");
  if (job && livefeed) {
    const button = job.querySelector(".demo-job-start");
    const bar = job.querySelector(".demo-job-bar");
    const percent = job.querySelector(".demo-job-percent");
    const done = job.querySelector(".demo-job-done");
    button.addEventListener("click", () => {
      const id = newId();
      button.disabled = true;
      done.hidden = true;
      delete job.dataset.state;
      bar.value = 0;
      percent.textContent = "0%";
      const off = livefeed.subscribe(job.dataset.channelPrefix + id, {
        progress(detail) {
          if (detail?.job !== id) return;
          bar.value = detail.percent;
          percent.textContent = `${detail.percent}%`;
        },
        done(detail) {
          if (detail?.job !== id) return;
          off();
          button.disabled = false;
          button.textContent = "Run it again";
          done.hidden = false;
          job.dataset.state = "done";
        },
      });
      post(job.dataset.startUrl, job.dataset.csrfToken, { id }).catch(console.error);
    });
  }

  // A streamed answer ----------------------------------------------------------
  const form = document.querySelector("[data-demo-answer]");
  if (form && livefeed?.answer) {
    const output = form.querySelector(".demo-answer-output");
    const token = form.dataset.csrfToken;
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const buttons = form.querySelectorAll("button");
      const prompt = form.elements.prompt.value;
      buttons.forEach((button) => (button.disabled = true));
      output.replaceChildren();
      try {
        if (event.submitter?.value === "fetch") {
          const init = { headers: { "X-CSRFToken": token }, body: new URLSearchParams({ prompt }) };
          await livefeed.readAnswer(form.dataset.streamUrl, init, output);
        } else {
          const key = newId();
          const answered = livefeed.answer(form.dataset.channelPrefix + key, output);
          await post(form.dataset.startUrl, token, { prompt, key });
          await answered;
        }
      } catch (error) {
        console.error(error);
        output.dataset.status = "failed";
      } finally {
        buttons.forEach((button) => (button.disabled = false));
      }
    });
  }

  // A live table -----------------------------------------------------------------
  const table = document.querySelector("[data-demo-orders]");
  if (table && livefeed) {
    const rows = table.tBodies[0];
    const empty = document.querySelector(".demo-orders-empty");
    const showEmpty = () => (empty.hidden = rows.rows.length > 0);
    // Restarting the animation needs a reflow between removing and adding the class.
    const flash = (tr) => {
      tr.classList.remove("demo-changed");
      void tr.offsetWidth;
      tr.classList.add("demo-changed");
    };
    const FIELDS = ["customer", "item", "quantity", "total", "status"];
    const find = (pk) => rows.querySelector(`tr[data-pk="${Number(pk)}"]`);
    const cell = (field, value) => {
      const td = document.createElement("td");
      if (field) td.dataset.field = field;
      td.textContent = value ?? "";
      return td;
    };
    const show = (order) => {
      let tr = find(order.pk);
      if (!tr) {
        tr = document.createElement("tr");
        tr.dataset.pk = order.pk;
        tr.append(cell(null, order.pk), ...FIELDS.map((field) => cell(field)));
        rows.prepend(tr);
      }
      for (const field of FIELDS) tr.querySelector(`[data-field="${field}"]`).textContent = order[field];
      flash(tr);
      showEmpty();
    };
    livefeed.subscribe("orders", {
      "order.created": show,
      "order.updated": show,
      "order.deleted": (order) => {
        find(order.pk)?.remove();
        showEmpty();
      },
    });
  }
}
