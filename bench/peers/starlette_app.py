"""The sse-starlette peer: one Redis pub/sub connection per process, local fan-out to queues.

    uvicorn bench.peers.starlette_app:app --loop uvloop --http httptools

The shape a careful hand-written SSE service has: it pattern-subscribes once,
encodes each event once and fans the bytes out. No session or database: a
`bench_user` cookie names the user, so it pays nothing for auth. No replay.
"""

import asyncio
import contextlib
import os
import threading

from sse_starlette.sse import EventSourceResponse, ServerSentEvent
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from bench.peers.fanout import fan_out

readers: dict[str, set[asyncio.Queue]] = {}


def _encode(event: dict) -> bytes:
    return ServerSentEvent(data=event["data"], event=event["event"], id=str(event["id"])).encode()


async def stream(request):
    user = request.cookies.get("bench_user")
    if not user:
        return JSONResponse({"error": "Sign in"}, status_code=401)
    channels = [f"user.{user}", "broadcast"]
    queue: asyncio.Queue = asyncio.Queue(256)
    for channel in channels:
        readers.setdefault(channel, set()).add(queue)

    async def events():
        try:
            yield ServerSentEvent(comment="connected")
            while True:
                yield await queue.get()
        finally:
            for channel in channels:
                readers.get(channel, set()).discard(queue)

    return EventSourceResponse(events(), ping=int(float(os.environ.get("LIVEFEED_HEARTBEAT", 15))))


async def stats(request):
    return JSONResponse({"tasks": len(asyncio.all_tasks()), "threads": threading.active_count()})


@contextlib.asynccontextmanager
async def lifespan(app):
    task = asyncio.create_task(fan_out(readers, _encode))
    yield
    task.cancel()


app = Starlette(
    routes=[Route("/stream/", stream), Route("/__bench__/stats", stats)],
    lifespan=lifespan,
)
