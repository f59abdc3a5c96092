"""The `?format=html` encoding of notification events, for htmx's SSE extension (docs/api.md).

`hx-ext="sse" sse-connect="/livefeed/stream/?format=html" sse-swap="notification"`
swaps each notification in as HTML, with no JavaScript of ours. The fragment comes
from the overridable template `livefeed/notification.html`, autoescaped: titles
and bodies stay text. Every other event keeps its JSON.
"""

import json
import logging
from collections.abc import Collection, Iterable
from typing import TYPE_CHECKING, Any

from django.template.loader import render_to_string

from livefeed import sse

if TYPE_CHECKING:
    from livefeed.hub import Reader

logger = logging.getLogger("livefeed")

EVENT = "notification"  # the one event rendered as HTML
TEMPLATE = "livefeed/notification.html"


def encode(event: str, data: str, id: int | None) -> bytes:
    """Return the SSE bytes of an event for an html stream: notifications rendered, the rest as JSON."""
    if event == EVENT:
        try:
            data = render_to_string(TEMPLATE, {"notification": json.loads(data)}).strip()
        except Exception:
            # A broken override must not stop the hub's fan-out: send the JSON instead.
            logger.exception("Could not render %s; sending event %s as JSON", TEMPLATE, id)
    # Line breaks of the fragment become further data: lines, joined back by the browser.
    return sse.encode(data, event=event, id=id)


def fan_out(
    readers: Iterable["Reader"],
    html_readers: Collection["Reader"],
    item: tuple[int | None, bytes],
    message: dict[str, Any],
) -> None:
    """Queue a notification for readers: its JSON item, or for html readers its HTML, rendered once."""
    html = None
    for reader in readers:
        if reader in html_readers:
            html = html or (item[0], encode(message["event"], message["data"], item[0]))
            reader.push(html)
        else:
            reader.push(item)
