"""The peers' fan-out: one Redis pub/sub connection per process, each event encoded once, queued for its local readers.

What bench.targets.RedisPublisher publishes under "bench:<channel>"; the shape a
careful hand-written SSE service has (bench/peers/starlette_app.py, floor.py).
"""

import asyncio
import contextlib
import json
import os
from collections.abc import Callable
from typing import Any

import redis.asyncio as redis

PREFIX = "bench:"


async def fan_out(readers: dict[str, set[asyncio.Queue]], encode: Callable[[dict[str, Any]], Any]) -> None:
    """Queue every event published to a channel, encoded once, for each of that channel's readers; runs forever."""
    client = redis.from_url(os.environ["REDIS_URL"])
    pubsub = client.pubsub()
    await pubsub.psubscribe(PREFIX + "*")
    async for message in pubsub.listen():
        if message["type"] != "pmessage":
            continue
        queues = readers.get(message["channel"].decode().removeprefix(PREFIX))
        if not queues:
            continue
        item = encode(json.loads(message["data"]))
        for queue in queues:
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(item)
