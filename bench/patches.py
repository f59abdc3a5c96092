"""Experiments: changes to the engine tried from the bench, never shipped (`--patch NAME`).

Each is a candidate for livefeed itself; docs/performance.md gives what it measured.
(`coalesce` and `fifo-connects` were adopted by the engine and left this list.)
Settings patches are applied by bench/settings.py, code patches by bench/asgi.py.
"""

import os

from asgiref.sync import sync_to_async

NAMES = ("keep-db", "lean-middleware", "count-hops")
hops = 0  # sync_to_async calls so far, with the count-hops patch


def active() -> set[str]:
    return {name for name in os.environ.get("BENCH_PATCH", "").split(",") if name}


def settings(namespace: dict) -> None:
    """Patch the settings module's namespace."""
    if "keep-db" in active():
        # The one shared stream thread keeps one connection open; Django's
        # request_started/finished then keep it instead of closing it.
        namespace["DATABASES"]["default"]["CONN_MAX_AGE"] = None
    if "lean-middleware" in active():
        # What a stream needs: the session and the user. Every other sync
        # middleware costs two thread hops per request under ASGI.
        namespace["MIDDLEWARE"] = [
            "django.contrib.sessions.middleware.SessionMiddleware",
            "django.contrib.auth.middleware.AuthenticationMiddleware",
        ]


def code() -> None:
    """Patch livefeed's modules once Django is set up."""
    from livefeed import views

    if "keep-db" in active():
        views._open = sync_to_async(views._channels)  # no closing of the connection
    if "count-hops" in active():
        _count_hops()


def _count_hops() -> None:
    """Count every sync_to_async call (a trip to a worker thread and back)."""
    from asgiref.sync import SyncToAsync

    call = SyncToAsync.__call__

    async def counted(self, *args, **kwargs):
        global hops
        hops += 1
        return await call(self, *args, **kwargs)

    SyncToAsync.__call__ = counted
