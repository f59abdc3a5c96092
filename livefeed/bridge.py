"""The bridge from sync code (views, signals, shell, workers) to livefeed's coroutines.

In a server process a coroutine runs on the loop that serves the streams (the
in-memory layer only works there). Elsewhere (shell, management commands,
workers) it runs on one private loop kept for the process, so every call
reuses one Redis connection instead of opening a new one (docs/design.md#trap-8).
"""

import asyncio
import threading
from typing import Any

from livefeed import hub

_sender_loop: asyncio.AbstractEventLoop | None = None
_sender_lock = threading.Lock()


def refuse_async_context(name: str = "publish") -> None:
    """Raise RuntimeError when called on a running event loop: name the async twin instead."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    raise RuntimeError(f"{name}() was called from async code: use 'await livefeed.a{name}(...)'.")


def run(coroutine: Any) -> None:
    """Run coroutine on sender_loop() and wait for it."""
    asyncio.run_coroutine_threadsafe(coroutine, sender_loop()).result(timeout=10)


def sender_loop() -> asyncio.AbstractEventLoop:
    """Return the loop sync code should run livefeed coroutines on (see above)."""
    return hub.running_loop() or _private_loop()


def _private_loop() -> asyncio.AbstractEventLoop:
    global _sender_loop
    with _sender_lock:
        if _sender_loop is None:
            _sender_loop = asyncio.new_event_loop()
            threading.Thread(target=_sender_loop.run_forever, name="livefeed-sender", daemon=True).start()
        return _sender_loop
