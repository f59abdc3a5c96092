"""The bridge from sync code (views, signals, shell, workers) to livefeed's coroutines.

In a server process a coroutine runs on the loop that serves the streams (the
in-memory layer only works there). Elsewhere (shell, management commands,
workers) it runs on one private loop kept for the process, so every call
reuses one Redis connection instead of opening a new one (docs/design.md#trap-8).
"""

import asyncio
import atexit
import concurrent.futures
import contextvars
import threading
from typing import Any

from livefeed import conf, hub

_sender_loop: asyncio.AbstractEventLoop | None = None
_sender_lock = threading.Lock()
# Background sends not finished yet: a reference keeps each task alive.
_pending: set[Any] = set()


def refuse_async_context(name: str = "publish") -> None:
    """Raise RuntimeError when called on a running event loop: name the async twin instead."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    raise RuntimeError(f"{name}() was called from async code: use 'await livefeed.a{name}(...)'.")


def submit(coroutine: Any, loop: asyncio.AbstractEventLoop | None = None) -> None:
    """Run coroutine in the background on loop (default: target_loop()); never wait for it.

    Submissions run in the order they were made.
    """
    loop = loop or target_loop()
    if loop is _running_loop():
        future: Any = loop.create_task(coroutine, context=contextvars.Context())
    else:
        # An empty context: the send outlives the request that makes it and
        # must not run in that request's (soon gone) thread.
        future = contextvars.Context().run(asyncio.run_coroutine_threadsafe, coroutine, loop)
    _pending.add(future)
    future.add_done_callback(_pending.discard)


def target_loop() -> asyncio.AbstractEventLoop:
    """Return the loop a coroutine submitted from here runs on: the running one, else sender_loop()."""
    return _running_loop() or sender_loop()


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def sender_loop() -> asyncio.AbstractEventLoop:
    """Return the loop sync code should run livefeed coroutines on (see above)."""
    return hub.running_loop() or _private_loop()


def _private_loop() -> asyncio.AbstractEventLoop:
    global _sender_loop
    with _sender_lock:
        if _sender_loop is None:
            _sender_loop = asyncio.new_event_loop()
            threading.Thread(target=_sender_loop.run_forever, name="livefeed-sender", daemon=True).start()
            atexit.register(finish_sends)
        return _sender_loop


def finish_sends() -> None:
    """Wait, a bounded time, for this process's background sends (at exit)."""
    # A shell or worker often exits right after its last publish: let those
    # sends finish (each is bounded by SEND_TIMEOUT) rather than leaving
    # stored events to the hubs' log sweep and losing unstored ones.
    waiting = [future for future in list(_pending) if isinstance(future, concurrent.futures.Future)]
    concurrent.futures.wait(waiting, timeout=conf.get("SEND_TIMEOUT"))
