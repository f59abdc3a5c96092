"""An ASGI handler that serves streams without an OS thread each (DESIGN §6 trap 9).

Django runs every ASGI request in its own ThreadSensitiveContext, whose worker
thread lives as long as the request: one thread per open stream. Streams do
their few sync steps (session, user, replay) on one shared thread instead;
every other request keeps Django's behaviour. Optional: without it streams work
the same, with a thread each.
"""

import asyncio
import weakref
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import django
from asgiref.sync import ThreadSensitiveContext
from django.core.handlers.asgi import ASGIHandler as DjangoASGIHandler
from django.urls import Resolver404, resolve

_stream_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="livefeed-streams")


# Streams setting up at once. Without a bound, every connect of a storm takes
# its turns on the one stream thread interleaved with all the others, and none
# gets its first byte before nearly all do: past a client's timeout, all fail.
_SETUP_SLOTS = 32
_slots: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore]" = weakref.WeakKeyDictionary()


class ASGIHandler(DjangoASGIHandler):
    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and _is_stream(scope):
            await self._stream(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)

    async def _stream(self, scope: dict, receive: Any, send: Any) -> None:
        slots = _slots.setdefault(asyncio.get_running_loop(), asyncio.Semaphore(_SETUP_SLOTS))
        await slots.acquire()
        held = True

        def release() -> None:
            nonlocal held
            if held:
                held = False
                slots.release()

        async def send_and_release(message: Mapping[str, Any]) -> None:
            if message["type"] == "http.response.body":
                release()  # set up: the next stream may start
            await send(message)

        try:
            async with ThreadSensitiveContext(executor=_stream_executor):
                await self.handle(scope, receive, send_and_release)
        finally:
            release()


def _is_stream(scope: dict) -> bool:
    from livefeed.views import stream

    path = scope["path"].removeprefix(scope.get("root_path", ""))
    try:
        return resolve(path).func is stream
    except Resolver404:
        return False


def get_asgi_application() -> ASGIHandler:
    """Return the Django ASGI application with thread-free streams."""
    django.setup(set_prefix=False)
    return ASGIHandler()
