"""Experiments: changes to the engine tried from the bench, never shipped (`--patch NAME`).

Each is a candidate for livefeed itself; docs/performance.md gives what it measured.
(`coalesce`, `fifo-connects` and `gc-freeze` were adopted by the engine and left this list; `keep-db`
gave way to the connection pool bench/settings.py turns on.)
Settings patches are applied by bench/settings.py, code patches by bench/asgi.py.
"""

import os

NAMES = ("lean-middleware", "count-hops", "no-request-signals")
hops = 0  # sync_to_async calls so far, with the count-hops patch


def active() -> set[str]:
    return {name for name in os.environ.get("BENCH_PATCH", "").split(",") if name}


def settings(namespace: dict) -> None:
    """Patch the settings module's namespace."""
    if "lean-middleware" in active():
        # What a stream needs: the session and the user. Every other sync
        # middleware costs two thread hops per request under ASGI.
        namespace["MIDDLEWARE"] = [
            "django.contrib.sessions.middleware.SessionMiddleware",
            "django.contrib.auth.middleware.AuthenticationMiddleware",
        ]


def code() -> None:
    """Patch livefeed's modules once Django is set up."""
    if "count-hops" in active():
        _count_hops()
    if "no-request-signals" in active():
        _no_request_signals()
    if os.environ.get("BENCH_GC"):  # e.g. BENCH_GC=700,10,10: Python's default thresholds
        import gc

        gc.set_threshold(*map(int, os.environ["BENCH_GC"].split(",")))


def _count_hops() -> None:
    """Count every sync_to_async call (a trip to a worker thread and back)."""
    from asgiref.sync import SyncToAsync

    call = SyncToAsync.__call__

    async def counted(self, *args, **kwargs):
        global hops
        hops += 1
        return await call(self, *args, **kwargs)

    SyncToAsync.__call__ = counted  # type: ignore[method-assign]  # counting hops on purpose


def _no_request_signals() -> None:
    """Disconnect Django's request_started and request_finished receivers: what their trips to a thread cost.

    Not a candidate as it stands (the receivers close the thread's stale database
    connections); it prices sending them in the trip that runs the middleware.
    """
    from django.core import signals
    from django.db import close_old_connections, reset_queries

    signals.request_started.disconnect(reset_queries)
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
