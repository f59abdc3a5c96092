"""A graceful SIGTERM for processes that serve streams.

ASGI servers drop every connection on SIGTERM, and all clients would come back
within the same second. The hub ends its streams first, each with its own
retry delay (SHUTDOWN_SPREAD), then hands the signal on to the server's own
handler SHUTDOWN_GRACE seconds later.

Servers install that handler in one of two ways, both before the first stream
starts the hub: daphne (Twisted) and uvicorn with `signal.signal`, hypercorn
and granian's workers with `loop.add_signal_handler`. The loop runs a handler
added that way whatever `signal.signal` says, so there the hub takes the loop's
slot instead and puts the server's handler back when it hands the signal on.
"""

import os
import signal
import threading
from collections.abc import Callable
from typing import Any

from livefeed import conf


def on_sigterm(loop: Any, shut_down: Callable[[], None]) -> None:
    """Call shut_down on loop at the first SIGTERM, then pass the signal on; main thread only."""
    if threading.current_thread() is not threading.main_thread():
        return
    # asyncio keeps no public record of a loop's signal handlers; uvloop's is not readable at all.
    theirs = getattr(loop, "_signal_handlers", {}).get(signal.SIGTERM)
    if theirs is not None:

        def give_back() -> None:
            loop.add_signal_handler(signal.SIGTERM, theirs._callback, *theirs._args)

        loop.add_signal_handler(signal.SIGTERM, _shut_down, loop, shut_down, give_back)
        return
    previous = signal.getsignal(signal.SIGTERM)

    def handle(signum: int, frame: Any) -> None:
        loop.call_soon_threadsafe(_shut_down, loop, shut_down, lambda: signal.signal(signal.SIGTERM, previous))

    signal.signal(signal.SIGTERM, handle)


def _shut_down(loop: Any, shut_down: Callable[[], None], give_back: Callable[[], Any]) -> None:
    give_back()  # a second SIGTERM is not delayed
    shut_down()
    loop.call_later(conf.get("SHUTDOWN_GRACE"), _chain)


def _chain() -> None:
    # Raised again, it reaches whatever handles SIGTERM now: the server's
    # handler, given back above, or the default action (end the process).
    os.kill(os.getpid(), signal.SIGTERM)
