"""The Server-Sent Events wire format, as bytes (WHATWG HTML, "Server-sent events").

Pure and Django-free so it can be tested byte for byte. Divergences on purpose:
- Field values that would break the framing (CR, LF, NUL in `id`/`event`) raise
  ValueError instead of being stripped: silently changing an id corrupts
  Last-Event-ID resumption, and the caller should hear about it.
- Newlines inside data are never passed through: every line break (CRLF, CR or
  LF) starts a new `data:` line, which is how user content is kept from
  injecting fields.
"""

import re

_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_FORBIDDEN = ("\r", "\n", "\0")

__all__ = ["check_field", "comment", "encode", "retry"]


def check_field(name: str, value: str) -> str:
    """Return value, or raise ValueError if it holds CR, LF or NUL (it would break the framing)."""
    if any(char in value for char in _FORBIDDEN):
        raise ValueError(f"SSE {name} must not contain CR, LF or NUL: {value!r}")
    return value


def encode(data: str, *, event: str | None = None, id: str | int | None = None) -> bytes:
    """Return one event, terminated by the blank line that dispatches it."""
    lines = []
    if id is not None:
        lines.append(f"id: {check_field('id', str(id))}")
    if event is not None:
        lines.append(f"event: {check_field('event', event)}")
    lines.extend(f"data: {line}" for line in _LINE_BREAK.split(data))
    return ("\n".join(lines) + "\n\n").encode()


def comment(text: str = "") -> bytes:
    """Return comment lines, ignored by browsers; used as keep-alive."""
    return "".join(f": {line}\n" for line in _LINE_BREAK.split(text)).encode()


def retry(milliseconds: int) -> bytes:
    """Return the field that sets the browser's reconnection delay."""
    if isinstance(milliseconds, bool) or not isinstance(milliseconds, int) or milliseconds < 0:
        raise ValueError(f"SSE retry must be a non-negative integer of ms, not {milliseconds!r}")
    return f"retry: {milliseconds}\n".encode()
