"""A graceful SIGTERM for processes that serve streams.

daphne drops every connection on SIGTERM, and all clients would come back
within the same second. The hub ends its streams first, each with its own
retry delay (SHUTDOWN_SPREAD), then hands the signal on to the server's own
handler SHUTDOWN_GRACE seconds later.
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
    previous = signal.getsignal(signal.SIGTERM)

    def handle(signum: int, frame: Any) -> None:
        loop.call_soon_threadsafe(_shut_down, loop, shut_down, previous)

    signal.signal(signal.SIGTERM, handle)


def _shut_down(loop: Any, shut_down: Callable[[], None], previous: Any) -> None:
    signal.signal(signal.SIGTERM, previous)  # a second SIGTERM is not delayed
    shut_down()
    loop.call_later(conf.get("SHUTDOWN_GRACE"), _chain, previous)


def _chain(previous: Any) -> None:
    if callable(previous):
        previous(signal.SIGTERM, None)
    else:
        os.kill(os.getpid(), signal.SIGTERM)  # the default action, restored above
