"""Clients that stop reading under a burst: daphne's memory stays flat and their streams are closed.

    .venv/bin/python -m bench.slow_client --duration 60

Starts a private redis-server and one daphne, opens --stuck streams whose
clients never read after the first bytes (a tiny receive window) and one
healthy stream read as usual, publishes a burst of --events events of
--size bytes, then watches the server's RSS for --duration more seconds. Prints one
JSON line: RSS before, at its highest and at the end, how many stuck streams
the server closed (MAX_UNSENT) and how many events the healthy stream got.
"""

import argparse
import json
import os
import tempfile
import threading
import time

from bench import procstat
from tests import servers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=60, help="seconds watched after the burst")
    parser.add_argument("--stuck", type=int, default=4)
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--size", type=int, default=4000, help="bytes of each event's data")
    args = parser.parse_args()

    workdir = tempfile.mkdtemp(prefix="livefeed-slow-client-")
    redis = servers.redis_server()
    database_url = os.environ.get("DATABASE_URL") or f"sqlite:///{workdir}/db.sqlite3"
    env = servers.server_env(database_url, f"redis://127.0.0.1:{redis.port}/0")
    server = None
    try:
        servers.manage(env, "migrate", "-v0")
        cookie = f"sessionid={servers.manage(env, 'shell', '-c', servers.sign_in_code('slow')).split()[-1]}"
        server = servers.daphne(env, app="tests.probe:application")
        result = _run(args, env, server, cookie)
    finally:
        if server:
            server.stop()
        redis.stop()
    print(json.dumps(result))


def _run(args: argparse.Namespace, env: dict[str, str], server: servers.Process, cookie: str) -> dict:
    pid = server.pid
    stuck = [servers.stuck_client(server.port, cookie) for _ in range(args.stuck)]
    healthy = servers.SSEClient(server.port, headers={"Cookie": cookie}).connected()
    got: list[int] = []
    reader = threading.Thread(target=lambda: got.append(len(healthy.events(args.events, timeout=args.duration + 60))))
    reader.start()
    before = procstat.status(pid)["rss_kb"]
    pad = "x" * args.size
    burst = f"import livefeed\nfor n in range({args.events}): livefeed.publish('broadcast', 'tick', {{'pad': {pad!r}}})"
    servers.manage(env, "shell", "-c", burst)
    started, samples = time.monotonic(), [procstat.status(pid)["rss_kb"]]
    while time.monotonic() - started < args.duration:
        samples.append(procstat.status(pid)["rss_kb"])
        time.sleep(1)
    reader.join(60)
    healthy.close()
    open_at_end = servers.probe(server.port)["streams"]  # before the stuck clients hang up themselves
    return {
        "stuck_clients": args.stuck,
        "events": args.events,
        "event_bytes": args.size,
        "duration_s": args.duration,
        "stuck_closed_by_server": sum(servers.ended_by_server(client, timeout=5) for client in stuck),
        "healthy_received": got[0] if got else 0,
        "streams_open_at_end": open_at_end,
        "rss_before_kb": before,
        "rss_max_kb": max(samples),
        "rss_end_kb": samples[-1],
        "rss_growth_kb": max(samples) - before,
    }


if __name__ == "__main__":
    main()
