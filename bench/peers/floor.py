"""The floor: the stack livefeed is built on, with nothing of livefeed in it.

    DJANGO_SETTINGS_MODULE=bench.peers.floor_settings daphne bench.peers.floor:application

An async Django view returning a StreamingHttpResponse on daphne, under Django's
own ASGI handler and the demo's middleware, fed by one Redis pub/sub
connection per process with a local fan-out to queues (sse-starlette's peer
shape). A first connect pays the session and user queries (`request.auser()`)
and nothing else: no channels, no grant, no replay, no ticket. With
BENCH_FLOOR=bare (`--target django-floor-bare`) the site has no middleware and the
`bench_user` cookie names the user, as for sse-starlette: Django and daphne alone.

What a target costs below this floor, livefeed cannot reach by any change of its
own (docs/performance.md#the-floor-of-the-stack).
"""

import asyncio
import gc
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.peers.floor_settings")

from asgiref.sync import sync_to_async  # noqa: E402
from django.core.asgi import get_asgi_application  # noqa: E402
from django.db import connection  # noqa: E402
from django.http import JsonResponse, StreamingHttpResponse  # noqa: E402
from django.urls import path  # noqa: E402

from bench.peers.fanout import fan_out  # noqa: E402
from bench.stats import with_stats  # noqa: E402
from livefeed.conf import DEFAULTS  # noqa: E402

BARE = os.environ.get("BENCH_FLOOR") == "bare"
readers: dict[str, set[asyncio.Queue]] = {}
_pump: list[asyncio.Task] = []


def _encode(event: dict) -> bytes:
    return f"id: {event['id']}\nevent: {event['event']}\ndata: {event['data']}\n\n".encode()


def _close_connection() -> None:
    connection.close()  # this thread's: looked up here, not on the event loop


async def stream(request):
    if BARE:
        pk = request.COOKIES.get("bench_user")
    else:
        user = await request.auser()  # the session and user queries
        pk = user.pk if user.is_authenticated else None
        # Back to the pool: Django would keep it for as long as the stream lasts (docs/design.md#trap-10).
        await sync_to_async(_close_connection)()
    if not pk:
        return JsonResponse({"error": "Sign in"}, status=401)
    if not _pump:
        _pump.append(asyncio.create_task(fan_out(readers, _encode)))
    channels = [f"user.{pk}", "broadcast"]
    queue: asyncio.Queue = asyncio.Queue(256)
    for channel in channels:
        readers.setdefault(channel, set()).add(queue)
    heartbeat = float(os.environ.get("LIVEFEED_HEARTBEAT", 15))

    async def events():
        try:
            yield b"retry: 5000\n: connected\n\n"
            while True:
                try:
                    yield await asyncio.wait_for(queue.get(), heartbeat)
                except TimeoutError:
                    yield b": keep-alive\n\n"
        finally:
            for channel in channels:
                readers.get(channel, set()).discard(queue)

    response = StreamingHttpResponse(events(), content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["Content-Encoding"] = "identity"  # past GZipMiddleware
    return response


urlpatterns = [path("stream/", stream)]

# livefeed's default GC_THRESHOLD (livefeed.asgi): the floor is not charged for what livefeed fixed already.
gc.set_threshold(DEFAULTS["GC_THRESHOLD"], *gc.get_threshold()[1:])

application = with_stats(get_asgi_application())
