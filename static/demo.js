// The home page's custom-event demo: a progress bar fed by `progress` events.
"use strict";
{
  const bar = document.getElementById("demo-progress");
  if (bar && window.livefeed) {
    window.livefeed.on("progress", ({ done, total }) => {
      bar.max = total;
      bar.value = done;
    });
  }
}
