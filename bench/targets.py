"""The servers a scenario can run against: livefeed on daphne, and its peers (bench/peers/)."""

import sys
from pathlib import Path
from typing import Any

from tests import servers

_BACKLOG = 4096  # Twisted listens with a backlog of 50 unless told (a connect storm overflows it)


class Livefeed:
    """livefeed's stream view on one daphne process with the Redis pub/sub layer."""

    name = "livefeed"
    settings = "bench.settings"  # DJANGO_SETTINGS_MODULE of the harness and the server
    app = "bench.asgi:application"
    path = "/livefeed/stream/"
    cookie = "sessionid"
    ready = b"connected"  # the stream's first bytes end with this
    heartbeat_event = ""  # an event the client counts as a heartbeat (comments always are)

    def __init__(self, harness) -> None:
        self.harness = harness

    def start_server(self, env: dict[str, str]) -> servers.Process:
        port = free = servers.free_port()
        endpoint = f"tcp:port={free}:interface=127.0.0.1:backlog={_BACKLOG}"
        args = [sys.executable, "-m", "daphne", "-v", "0", "-e", endpoint, self.app]
        return servers.Process(f"bench-daphne-{port}", args, port, env).start()

    def cookie_value(self, session_key: str, pk: int) -> str:
        return session_key

    def measured_pid(self, server: servers.Process) -> int:
        """Return the process that serves the streams (whose CPU and memory are measured)."""
        return server.pid

    def warm_up(self, session: tuple[str, int], port: int) -> None:
        from bench.harness import raw_get

        cookie = f"{self.cookie}={self.cookie_value(*session)}"
        raw_get(port, self.path, cookie, self.ready)
        # The publisher's first send opens its Redis connection: not part of any latency.
        self.publish("bench-warm-up", {"seq": -1, "t": 0})

    def publish(self, channel: str, data: dict) -> None:
        import livefeed

        livefeed.publish(channel, "bench", data)

    def notify(self, user: Any, data: dict) -> None:
        import livefeed

        livefeed.notify(user, title="Bench", data=data)

    def user_channel(self, pk: int) -> str:
        return f"user.{pk}"

    def broadcast_channel(self) -> str:
        return "broadcast"


class LivefeedUvicorn(Livefeed):
    """The same Django app and engine on uvicorn (uvloop, httptools): what daphne itself costs."""

    name = "livefeed-uvicorn"

    def start_server(self, env: dict[str, str]) -> servers.Process:
        port = servers.free_port()
        return servers.Process(f"bench-uvicorn-{port}", _uvicorn(self.app, port), port, env).start()


class LivefeedHypercorn(Livefeed):
    """The same Django app and engine on hypercorn (asyncio loop, one process: --workers 0)."""

    name = "livefeed-hypercorn"

    def start_server(self, env: dict[str, str]) -> servers.Process:
        port = servers.free_port()
        args = [
            sys.executable, "-m", "hypercorn", "--bind", f"127.0.0.1:{port}", "--workers", "0",
            "--backlog", str(_BACKLOG), self.app,
        ]  # fmt: skip
        return servers.Process(f"bench-hypercorn-{port}", args, port, env).start()


class LivefeedGranian(Livefeed):
    """The same Django app and engine on granian (Rust HTTP, asyncio loop, one worker)."""

    name = "livefeed-granian"

    def start_server(self, env: dict[str, str]) -> servers.Process:
        port = servers.free_port()
        args = [
            sys.executable, "-m", "granian", "--interface", "asginl", "--loop", "asyncio",
            "--host", "127.0.0.1", "--port", str(port), "--backlog", str(_BACKLOG), self.app,
        ]  # fmt: skip
        return servers.Process(f"bench-granian-{port}", args, port, env).start()

    def measured_pid(self, server: servers.Process) -> int:
        # granian's main process only supervises: its one worker serves the streams.
        children = Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split()
        return int(children[0])


def _uvicorn(app: str, port: int) -> list[str]:
    return [
        sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port),
        "--backlog", str(_BACKLOG), "--loop", "uvloop", "--http", "httptools",
        "--lifespan", "auto", "--log-level", "warning", "--no-access-log",
    ]  # fmt: skip


class RedisPublisher:
    """Publishes as bench/peers/starlette_app.py and floor.py read it: one Redis PUBLISH per event, no log."""

    harness: Any
    _redis: Any = None
    _next_id = 0

    def publish(self, channel: str, data: dict) -> None:
        import json

        import redis

        if self._redis is None:
            self._redis = redis.Redis.from_url(self.harness.redis_url)
        self._next_id += 1
        event = {"id": self._next_id, "event": "bench", "data": json.dumps(data, separators=(",", ":"))}
        from bench.peers.fanout import PREFIX

        self._redis.publish(PREFIX + channel, json.dumps(event))


class SseStarlette(RedisPublisher, Livefeed):
    """bench/peers/starlette_app.py on uvicorn (uvloop, httptools): Redis pub/sub, local fan-out."""

    name = "sse-starlette"
    path = "/stream/"
    cookie = "bench_user"

    def start_server(self, env: dict[str, str]) -> servers.Process:
        port = servers.free_port()
        args = _uvicorn("bench.peers.starlette_app:app", port)
        return servers.Process(f"bench-uvicorn-{port}", args, port, env).start()

    def cookie_value(self, session_key: str, pk: int) -> str:
        return str(pk)


class DjangoFloor(RedisPublisher, Livefeed):
    """bench/peers/floor.py on one daphne: an async Django view and StreamingHttpResponse, nothing of livefeed."""

    name = "django-floor"
    settings = "bench.peers.floor_settings"
    app = "bench.peers.floor:application"
    path = "/stream/"


class DjangoFloorBare(DjangoFloor):
    """The floor with no middleware and no session: the cookie names the user, as for sse-starlette."""

    name = "django-floor-bare"
    cookie = "bench_user"

    def start_server(self, env: dict[str, str]) -> servers.Process:
        return super().start_server({**env, "BENCH_FLOOR": "bare"})

    def cookie_value(self, session_key: str, pk: int) -> str:
        return str(pk)


class DjangoEventstream(Livefeed):
    """django-eventstream (bench/peers/eventstream_*.py) on one daphne: Redis pub/sub, events stored in the DB."""

    name = "django-eventstream"
    settings = "bench.peers.eventstream_settings"
    app = "bench.peers.eventstream_asgi:application"
    path = "/events/"
    ready = b"stream-open"
    heartbeat_event = "keep-alive"  # every 20 s, fixed: --heartbeat does not reach it

    def publish(self, channel: str, data: dict) -> None:
        from django_eventstream import send_event

        send_event(channel, "bench", data)  # stores the event, then one Redis PUBLISH

    def user_channel(self, pk: int) -> str:
        from bench.peers.eventstream_urls import user_channel

        return user_channel(pk)


TARGETS = {
    "livefeed": Livefeed,
    "livefeed-uvicorn": LivefeedUvicorn,
    "livefeed-hypercorn": LivefeedHypercorn,
    "livefeed-granian": LivefeedGranian,
    "sse-starlette": SseStarlette,
    "django-eventstream": DjangoEventstream,
    "django-floor": DjangoFloor,
    "django-floor-bare": DjangoFloorBare,
}


def get(name: str, harness):
    return TARGETS[name](harness)
