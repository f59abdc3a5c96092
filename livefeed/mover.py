"""The process's mover: moves committed outbox rows into the log for publishers that did not wait.

A publisher whose outbox row has committed has stored its event: what is left
is the move into the log, under the log's one lock (livefeed.outbox). When the
lock is taken, waiting for it would queue the publisher behind every other
publisher's commit, so it hands the move to this one background thread and
returns (outbox.try_move). Each move takes every committed row, so one thread
per process keeps up with any number of publishers in it: what they commit
while it waits for the lock, or for MOVE_GATHER before it, goes in its next
move. A move that fails is tried again after RETRY seconds; a process killed
before its mover ran leaves its rows to the next move anywhere, or to the
hubs' sweep.
"""

import atexit
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from django.db import connections

from livefeed import bridge, conf, outbox

logger = logging.getLogger("livefeed")

Send = Callable[[list[dict[str, Any]]], None]

# Seconds without a move before the thread gives its database connections back.
IDLE = 1.0
# Seconds between a failed move and the next try (the database or the connection is down).
RETRY = 1.0

_ready = threading.Condition()
_wanted: dict[str, Send] = {}  # database alias → what sends the moved events
_moving = False
_thread: threading.Thread | None = None
_exit_hook = False


def move_soon(using: str, send: Send) -> None:
    """Have the mover move every committed outbox row of database using into the log, then send them.

    send must not need a new thread: at interpreter exit none can start.
    """
    global _thread, _exit_hook
    with _ready:
        _wanted[using] = send
        if _thread is None or not _thread.is_alive():
            if not _exit_hook:
                atexit.register(_finish)
                _exit_hook = True
            _thread = threading.Thread(target=_move_forever, name="livefeed-mover", daemon=True)
            _thread.start()
        _ready.notify_all()  # _finish() waits on the same condition


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
            _close(used)
            used.clear()
            with _ready:
                _ready.wait_for(lambda: _wanted)
        # The mover runs only when publishers contend for the log: a moment's wait lets
        # one move take what they commit meanwhile, where each would cost a move of its own
        # (docs/performance.md#the-mover-lets-events-gather).
        time.sleep(conf.positive("MOVE_GATHER") or 0.0)
        with _ready:
            wanted = dict(_wanted)
            _wanted.clear()
            _moving = True
        failed = {}
        for using, send in wanted.items():
            used.add(using)
            try:
                moved = outbox.move({}, using)
            except Exception:
                logger.warning("Moving outbox rows into the log failed; trying again in %s s", RETRY, exc_info=True)
                _close({using})
                failed[using] = send
                continue
            try:
                send(moved)
            except Exception:  # stored and in the log: every hub recovers them
                logger.warning("Sending %d moved event(s) failed; the hubs will read them from the log", len(moved))
        if failed:
            time.sleep(RETRY)
            with _ready:
                _wanted.update({using: send for using, send in failed.items() if using not in _wanted})


def _close(aliases: set[str]) -> None:
    for using in aliases:
        try:
            connections[using].close()
        except Exception:  # a connection that broke: nothing left to give back
            logger.debug("Closing the mover's connection to %r failed", using, exc_info=True)


def _finish() -> None:
    # A script often exits right after its last publish: its rows reach the
    # log now, rather than at the hubs' next sweep, and their sends go out.
    with _ready:
        _ready.wait_for(lambda: not _wanted and not _moving, timeout=conf.get("SEND_TIMEOUT"))
    bridge.finish_sends()


def _forget() -> None:
    # A forked child has none of its parent's threads, and may have forked while one held _ready.
    global _ready, _moving, _thread
    _ready, _moving, _thread = threading.Condition(), False, None
    _wanted.clear()


os.register_at_fork(after_in_child=_forget)
