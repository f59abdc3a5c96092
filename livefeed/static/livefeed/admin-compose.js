/* The admin's compose page: show only the chosen audience's fields, and mark a
 * preview stale once the form changes.
 *
 * Config comes from data-audience-fields on [data-livefeed-compose] (the map in
 * livefeed/compose.py). A hidden field is also disabled, so what it holds is not
 * sent; the server refuses another audience's fields anyway. Does nothing
 * without the element.
 */
"use strict";
{
  const config = document.querySelector("[data-livefeed-compose]");
  const form = config?.closest("form");
  if (form) {
    const fieldsOf = JSON.parse(config.dataset.audienceFields || "{}");
    const radios = [...form.querySelectorAll("input[name=audience]")];
    const rowOf = (name) => form.querySelector(`.form-row.field-${name}`);

    const showAudience = () => {
      const chosen = radios.find((radio) => radio.checked)?.value;
      for (const [audience, names] of Object.entries(fieldsOf)) {
        for (const name of names) {
          const row = rowOf(name);
          if (!row) continue;
          const shown = audience === chosen;
          row.hidden = !shown;
          for (const control of row.querySelectorAll("select, input")) control.disabled = !shown;
        }
      }
    };

    const preview = document.getElementById("livefeed-preview");
    const markStale = () => {
      if (!preview) return;
      preview.classList.add("livefeed-stale");
      for (const send of form.elements) if (send.name === "_save" && send.dataset.plain) send.value = send.dataset.plain;
    };

    for (const radio of radios) radio.addEventListener("change", showAudience);
    form.addEventListener("input", markStale);
    form.addEventListener("change", markStale);
    showAudience();
  }
}
