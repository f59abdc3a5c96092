"""Experiments: changes to the engine tried from the bench, never shipped (`--patch NAME`).

Each is a candidate for livefeed itself; docs/performance.md gives what it measured.
Settings patches are applied by bench/settings.py, code patches by bench/asgi.py.
"""

import os

from asgiref.sync import sync_to_async

NAMES = ("keep-db", "lean-middleware", "coalesce", "count-hops", "fifo-connects")
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
        views._open_channels = sync_to_async(views._authorized_channels)
    if "coalesce" in active():
        views._events = _coalescing_events(views)
    if "count-hops" in active():
        _count_hops()
    if "fifo-connects" in active():
        _fifo_connects()


# Stream requests between arrival and first byte at once (BENCH_OPENING to try others).
_OPENING = int(os.environ.get("BENCH_OPENING", 4))


def _fifo_connects() -> None:
    """Let only a few stream requests at a time run their setup, so they finish in arrival order.

    Without it every connect of a storm takes its turns on the one stream thread
    interleaved with all the others, and none gets its first byte before nearly all do.
    """
    import asyncio

    from livefeed import asgi

    plain_call = asgi.ASGIHandler.__call__
    gates: dict = {}

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not asgi._is_stream(scope):
            return await plain_call(self, scope, receive, send)
        gate = gates.setdefault(asyncio.get_running_loop(), asyncio.Semaphore(_OPENING))
        await gate.acquire()
        held = True

        def release() -> None:
            nonlocal held
            if held:
                held = False
                gate.release()

        async def gated_send(message):
            if message["type"] == "http.response.body":
                release()  # the first byte is out: the next request may set up
            await send(message)

        try:
            await plain_call(self, scope, receive, gated_send)
        finally:
            release()

    asgi.ASGIHandler.__call__ = __call__


def _count_hops() -> None:
    """Count every sync_to_async call (a trip to a worker thread and back)."""
    from asgiref.sync import SyncToAsync

    call = SyncToAsync.__call__

    async def counted(self, *args, **kwargs):
        global hops
        hops += 1
        return await call(self, *args, **kwargs)

    SyncToAsync.__call__ = counted


def _coalescing_events(views):
    """Return views._events, but each wake-up writes everything queued as ONE chunk."""
    import asyncio

    from livefeed import conf, eventlog, sse

    async def _events(hub, reader, last_id):
        try:
            yield sse.retry(conf.get("RETRY"))
            await hub.add(reader)
            yield sse.comment("connected")
            seen = -1
            if last_id is not None:
                chunks, seen = await eventlog.replay(reader.channels, last_id)
                if chunks:
                    yield b"".join(chunks)
            queue = reader.queue
            while True:
                items = [await queue.get()]
                while not queue.empty():
                    items.append(queue.get_nowait())
                chunk = b"".join(payload for event_id, payload in items if event_id is None or event_id > seen)
                if chunk:
                    yield chunk
                if reader.overflowed and queue.empty():
                    return
        except asyncio.CancelledError:
            raise
        except Exception:
            views.logger.exception("livefeed stream failed; closing it")
        finally:
            await hub.remove(reader)

    return _events
