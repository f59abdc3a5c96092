"""The demo's ASGI application plus /__bench__/stats (asyncio tasks, threads) for bench.run."""

import asyncio
import json
import os
import threading
import tracemalloc

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")

from bench import patches  # noqa: E402
from project.asgi import application as django_application  # noqa: E402

patches.code()

STATS_PATH = "/__bench__/stats"
if os.environ.get("BENCH_TRACEMALLOC"):
    tracemalloc.start(int(os.environ["BENCH_TRACEMALLOC"]))


async def application(scope: dict, receive, send) -> None:
    if scope["type"] == "http" and scope["path"] == STATS_PATH:
        stats = {"tasks": len(asyncio.all_tasks()), "threads": threading.active_count(), "hops": patches.hops}
        if tracemalloc.is_tracing():
            top = tracemalloc.take_snapshot().statistics("traceback" if scope["query_string"] else "filename")
            stats["memory"] = [[str(stat.traceback), stat.size, stat.count] for stat in top[:40]]
        body = json.dumps(stats).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        return
    await django_application(scope, receive, send)
