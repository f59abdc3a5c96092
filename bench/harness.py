"""The processes of one benchmark run: Redis, a database, one server, load clients, the publisher."""

import http.client
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench import fixtures, procstat, targets
from tests import servers

ROOT = Path(__file__).resolve().parent.parent


def raise_file_limit() -> None:
    """Lift the soft open-files limit to the hard one; children inherit it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class Harness:
    def __init__(self, args) -> None:
        self.args = args
        self.redis: servers.Process | None = None
        self.servers: list[servers.Process] = []
        self.front: servers.Process | None = None
        self.clients: list[subprocess.Popen] = []
        self.db_name = ""
        self.profiler: subprocess.Popen | None = None

    # Setup and teardown --------------------------------------------------------

    def start(self) -> None:
        raise_file_limit()
        self.target = targets.get(self.args.target, self)
        self.redis = servers.redis_server()
        self.redis_url = f"redis://127.0.0.1:{self.redis.port}/0"
        self.database_url, self.db_name = fixtures.create_database(self.args.db)
        os.environ.update(
            DATABASE_URL=self.database_url,
            REDIS_URL=self.redis_url,
            DJANGO_SETTINGS_MODULE=self.target.settings,
            LIVEFEED_HEARTBEAT=str(self.args.heartbeat),
            BENCH_PATCH=self.args.patch,
        )
        import django

        django.setup()
        started = time.monotonic()
        # One spare user warms the server up before anything is measured.
        self.sessions = fixtures.populate(self.args.streams + 1)
        self.setup_seconds = time.monotonic() - started
        # --servers K: K identical server processes, Redis between them; clients split evenly.
        for _ in range(self.args.servers):
            self.servers.append(self.target.start_server(dict(os.environ)))
            self.target.warm_up(self.sessions[-1], self.servers[-1].port)
        self.server = self.servers[0]
        if self.args.scenario == "fleet":
            # The documented nginx config in front of every server; clients talk to it only.
            site = (ROOT / "docs" / "examples" / "nginx.conf").read_text()
            self.front = servers.nginx(site, [s.port for s in self.servers], ROOT / "test-artifacts" / "bench-nginx",
                                       connections=4 * self.args.streams + 1024)  # fmt: skip
        self.pids = [self.target.measured_pid(server) for server in self.servers]
        self.pid = self.pids[0]  # profiled and dumped
        self._start_clients(self.sessions[:-1])

    def _start_clients(self, sessions: list[tuple[str, int]]) -> None:
        count = self.args.clients
        for number in range(count):
            mine = [
                [self.target.cookie_value(key, pk), index]
                for index, (key, pk) in enumerate(sessions)
                if index % count == number
            ]
            process = subprocess.Popen(
                [sys.executable, "-m", "bench.client"],
                cwd=ROOT,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            port = self.front.port if self.front else self.servers[number % len(self.servers)].port
            setup = {
                "port": port,
                "path": self.target.path,
                "cookie": self.target.cookie,
                "heartbeat_event": self.target.heartbeat_event,
            }
            tell(process, json.dumps({**setup, "sessions": mine}) + "\n")
            self.clients.append(process)

    def stop(self) -> None:
        self.stop_profile()
        for process in self.clients:
            if process.poll() is None:
                try:
                    tell(process, '{"cmd": "exit"}\n')
                    process.wait(10)
                except (OSError, subprocess.TimeoutExpired):
                    process.kill()
        from django.db import connections

        connections.close_all()
        for server in (*self.servers, self.front, self.redis):
            if server:
                server.stop()
        if self.db_name:
            fixtures.drop_database(self.args.db, self.db_name)

    def kill_server(self) -> int:
        """SIGKILL the last server, as a crashed host would go; return how many streams it held."""
        victim = self.servers[-1]
        held = (self.fetch_stats(victim.port) or {}).get("streams", 0)
        victim.stop(signal.SIGKILL)
        self.pids.remove(self.target.measured_pid(victim))
        self.servers.remove(victim)
        return held

    # Talking to the load clients -----------------------------------------------

    def command(self, name: str, **fields) -> list[dict]:
        """Send one command to every client, then return their replies."""
        line = json.dumps({"cmd": name, **fields}) + "\n"
        for process in self.clients:
            tell(process, line)
        return [hear(process) for process in self.clients]

    def client_cpu(self) -> float:
        return sum(reply["cpu_total"] for reply in self.command("stats"))

    # Measuring the server ------------------------------------------------------

    def snapshot(self) -> dict:
        """Return the servers' CPU, RSS, threads, asyncio tasks and DB connections now (summed)."""
        snap: dict[str, Any] = {"t": time.monotonic(), "cpu": sum(procstat.cpu_seconds(pid) for pid in self.pids)}
        for pid in self.pids:
            for key, value in procstat.status(pid).items():
                snap[key] = snap.get(key, 0) + value
        stats = [self.fetch_stats(server.port) or {} for server in self.servers]
        for key in ("tasks", "hops", "gc_s", "queries"):
            values = [one.get(key) for one in stats]
            snap[key] = None if None in values else sum(sum(v) if isinstance(v, list) else v for v in values)
        snap["db_connections"] = self._db_connections()
        return snap

    def _db_connections(self) -> int:
        if self.args.db == "sqlite":
            return sum(procstat.open_files(pid, self.db_name) for pid in self.pids)
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                [self.db_name],
            )
            return cursor.fetchone()[0]

    def fetch_stats(self, port: int) -> dict | None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            connection.request("GET", "/__bench__/stats")
            response = connection.getresponse()
            return json.loads(response.read()) if response.status == 200 else None
        except (OSError, ValueError):
            return None
        finally:
            connection.close()

    def start_profile(self, label: str) -> None:
        """Sample the server with py-spy into bench/results/<label>.txt (collapsed stacks)."""
        if not self.args.profile:
            return
        out = ROOT / "bench" / "results" / f"{label}.txt"
        out.parent.mkdir(exist_ok=True)
        spy = Path(sys.executable).parent / "py-spy"
        rate = str(self.args.profile_rate)
        self.profiler = subprocess.Popen(
            [str(spy), "record", "--pid", str(self.pid), "--rate", rate, "--gil", "--format", "raw", "-o", str(out)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(1)  # py-spy attaches

    def dump_stacks(self, label: str) -> str | None:
        """Write every thread's stack of the server (py-spy dump) to bench/results/; return the path."""
        spy = Path(sys.executable).parent / "py-spy"
        if not spy.exists():
            return None
        out = ROOT / "bench" / "results" / f"{label}-stacks.txt"
        out.parent.mkdir(exist_ok=True)
        dump = subprocess.run([str(spy), "dump", "--pid", str(self.pid), "--locals"], capture_output=True, text=True)
        out.write_text(dump.stdout + dump.stderr)
        return str(out.relative_to(ROOT))

    def stop_profile(self) -> None:
        if self.profiler and self.profiler.poll() is None:
            self.profiler.send_signal(2)  # SIGINT: py-spy writes its file and exits
            self.profiler.wait(30)
        self.profiler = None


def tell(process: subprocess.Popen, line: str) -> None:
    """Send one line to a helper process (a load client, a publisher)."""
    assert process.stdin is not None  # started with stdin=PIPE
    process.stdin.write(line)
    process.stdin.flush()


def hear(process: subprocess.Popen) -> dict:
    """Return the next JSON line a helper process answers."""
    assert process.stdout is not None  # started with stdout=PIPE
    reply = process.stdout.readline()
    if not reply:
        raise RuntimeError(f"{process.args!r} (pid {process.pid}) died (exit {process.poll()})")
    return json.loads(reply)


def raw_get(port: int, path: str, cookie: str, read_until: bytes = b"\r\n\r\n") -> bytes:
    """Open a stream once on a plain socket, read its first bytes, close it (warm-up)."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nCookie: {cookie}\r\n\r\n".encode())
        data = b""
        while read_until not in data:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        return data
