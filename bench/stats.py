"""ASGI wrapper answering GET /__bench__/stats (asyncio tasks, threads) for bench.run; the rest passes through."""

import asyncio
import gc
import json
import os
import threading
import time
import tracemalloc
from typing import Any

from bench import patches

STATS_PATH = "/__bench__/stats"
if os.environ.get("BENCH_TRACEMALLOC"):
    tracemalloc.start(int(os.environ["BENCH_TRACEMALLOC"]))

_gc_seconds = [0.0, 0.0, 0.0]  # time in the cyclic garbage collector, per generation
_gc_started = 0.0


def _gc_timer(phase: str, info: dict) -> None:
    global _gc_started
    if phase == "start":
        _gc_started = time.perf_counter()
    else:
        _gc_seconds[info["generation"]] += time.perf_counter() - _gc_started


gc.callbacks.append(_gc_timer)

_queries = [0]  # SQL statements the server ran, every thread's


def _count_query(execute: Any, sql: str, params: Any, many: bool, context: dict) -> Any:
    _queries[0] += 1
    return execute(sql, params, many, context)


def _watch_queries(sender: Any, connection: Any, **kwargs: Any) -> None:
    if _count_query not in connection.execute_wrappers:
        connection.execute_wrappers.append(_count_query)


def _count_queries() -> None:
    # Django targets only (livefeed, django-eventstream); sse-starlette has no database.
    from django.db.backends.signals import connection_created

    connection_created.connect(_watch_queries)


def with_stats(django_application):
    """Return django_application with /__bench__/stats answered before it."""
    _count_queries()

    async def application(scope: dict, receive, send) -> None:
        if scope["type"] == "http" and scope["path"] == STATS_PATH:
            await _stats(scope, send)
            return
        await django_application(scope, receive, send)

    return application


def _open_streams() -> int:
    from livefeed import hub

    return sum(len(one.streams) for one in list(hub._hubs.values()))


async def _stats(scope: dict, send) -> None:
    stats: dict[str, Any] = {
        "tasks": len(asyncio.all_tasks()),
        "threads": threading.active_count(),
        "hops": patches.hops,
        "queries": _queries[0],
    }
    stats["streams"] = _open_streams()
    stats["gc_s"] = [round(seconds, 4) for seconds in _gc_seconds]
    if tracemalloc.is_tracing():
        top = tracemalloc.take_snapshot().statistics("traceback" if scope["query_string"] else "filename")
        stats["memory"] = [[str(stat.traceback), stat.size, stat.count] for stat in top[:40]]
    body = json.dumps(stats).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})
