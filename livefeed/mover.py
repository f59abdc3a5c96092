"""The process's mover: moves committed outbox rows into the log for publishers that did not wait.

A publisher whose outbox row has committed has stored its event: what is left
is the move into the log, under the log's one lock (livefeed.outbox). When the
lock is taken, waiting for it would queue the publisher behind every other
publisher's commit, so it hands the move to this one background thread and
returns (outbox.try_move). Each move takes every committed row, so one thread
per process keeps up with any number of publishers in it: what they commit
while it waits for the lock goes in its next move. A process killed before its
mover ran leaves its rows to the next move anywhere, or to the hubs' sweep.
"""

import atexit
import logging
import threading
from collections.abc import Callable
from typing import Any

from django.db import connections

from livefeed import bridge, conf, outbox

logger = logging.getLogger("livefeed")

Send = Callable[[list[dict[str, Any]]], None]

# Seconds without a move before the thread gives its database connections back.
IDLE = 1.0

_ready = threading.Condition()
_wanted: dict[str, Send] = {}  # database alias → what sends the moved events
_moving = False
_thread: threading.Thread | None = None


def move_soon(using: str, send: Send) -> None:
    """Have the mover move every committed outbox row of database using into the log, then send them."""
    global _thread
    with _ready:
        _wanted[using] = send
        if _thread is None or not _thread.is_alive():  # first use, or the process forked since
            if _thread is None:
                atexit.register(_finish)
            _thread = threading.Thread(target=_move_forever, name="livefeed-mover", daemon=True)
            _thread.start()
        _ready.notify()


def _move_forever() -> None:
    global _moving
    used: set[str] = set()
    while True:
        with _ready:
            _moving = False
            _ready.notify_all()  # _finish() waits for this
            idle = not _ready.wait_for(lambda: _wanted, timeout=IDLE)
        if idle:
            # A connection per thread stays open until closed: this one is
            # not a request's, and nothing else would close it.
            for using in used:
                connections[using].close()
            used.clear()
            with _ready:
                _ready.wait_for(lambda: _wanted)
        with _ready:
            wanted = dict(_wanted)
            _wanted.clear()
            _moving = True
        for using, send in wanted.items():
            used.add(using)
            try:
                send(outbox.move({}, using))
            except Exception:
                logger.warning("Moving outbox rows into the log failed; the hubs' sweep will move them", exc_info=True)
                connections[using].close()


def _finish() -> None:
    # A script often exits right after its last publish: its rows reach the
    # log now, rather than at the hubs' next sweep, and their sends go out.
    with _ready:
        _ready.wait_for(lambda: not _wanted and not _moving, timeout=conf.get("SEND_TIMEOUT"))
    bridge.finish_sends()
