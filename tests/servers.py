"""Real processes for the tests: a private redis-server and daphne servers."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Self, cast

ROOT = Path(__file__).resolve().parent.parent


def package_source(directory: Path) -> Path:
    """Copy what `pip install` builds from (pyproject, README, the app) into directory; return it.

    Building in the checkout writes build/ and *.egg-info there, which another run of the suite
    (scripts/suites.sh runs them side by side) may be building from at the same moment.
    """
    directory.mkdir(parents=True, exist_ok=True)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, directory / name)
    shutil.copytree(ROOT / "livefeed", directory / "livefeed", ignore=shutil.ignore_patterns("__pycache__"))
    return directory


ARTIFACTS = ROOT / "test-artifacts"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(condition, what: str, timeout: float = 60) -> None:
    """Poll condition until it holds; raise TimeoutError naming what did not happen."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {what} within {timeout} s")
        time.sleep(0.2)


def wait_for_port(port: int, process: subprocess.Popen, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{cast(list, process.args)[:3]} exited with {process.returncode} before listening")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"Nothing listened on port {port} within {timeout} s")


class Process:
    """A child process in its own process group, logged to test-artifacts/."""

    def __init__(self, name: str, args: list[str], port: int, env: dict[str, str] | None = None, cwd=ROOT):
        self.name, self.args, self.port, self.env, self.cwd = name, args, port, env, cwd
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 20) -> "Process":
        ARTIFACTS.mkdir(exist_ok=True)
        log = open(ARTIFACTS / f"{self.name}.log", "ab")  # noqa: SIM115 - lives with the process
        self.process = subprocess.Popen(
            self.args, cwd=self.cwd, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        wait_for_port(self.port, self.process, timeout)
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None, "start() it first"
        return self.process.pid

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, sig)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)


def redis_args(port: int) -> list[str]:
    """A redis-server that keeps nothing on disk; a replica's sync still writes an RDB, into a scratch --dir."""
    return [
        *("redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"),
        *("--dir", tempfile.mkdtemp(prefix="livefeed-redis-")),
    ]


def redis_server() -> Process:
    port = free_port()
    return Process(f"redis-{port}", redis_args(port), port).start()


APPLICATION = "project.asgi:application"

# How each ASGI server serves the demo on 127.0.0.1:PORT as one process per port, like daphne
# (docs/deploy.md#which-asgi-server). Django speaks no ASGI lifespan: servers that ask for it are told not to.
SERVER_ARGS = {
    "daphne": ["-m", "daphne", "-b", "127.0.0.1", "-p", "{port}", "{app}"],
    "uvicorn": ["-m", "uvicorn", "--host", "127.0.0.1", "--port", "{port}", "--lifespan", "off", "{app}"],
    # --workers 0: serve in this process instead of one child that SIGTERM never reaches.
    "hypercorn": ["-m", "hypercorn", "--bind", "127.0.0.1:{port}", "--workers", "0", "{app}"],
    "granian": [
        *("-m", "granian", "--interface", "asginl", "--loop", "asyncio"),
        *("--host", "127.0.0.1", "--port", "{port}", "{app}"),
    ],
}


def server(kind: str, env: dict[str, str], port: int | None = None, app: str = APPLICATION) -> Process:
    """Start one ASGI server of kind (a key of SERVER_ARGS) serving app (the demo site by default)."""
    port = port or free_port()
    args = [sys.executable, *(arg.format(port=port, app=app) for arg in SERVER_ARGS[kind])]
    return Process(f"{kind}-{port}", args, port, env).start()


NGINX_MAIN = """
daemon off;
worker_processes 1;
worker_rlimit_nofile {files};
pid {prefix}/nginx.pid;
error_log {prefix}/error.log;
events {{ worker_connections {connections}; }}
http {{
    gzip on;  # as in Debian's /etc/nginx/nginx.conf
    access_log off;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    include {site};
}}
"""
NGINX_EXAMPLE = ROOT / "docs" / "examples" / "nginx.conf"


def nginx_binary() -> str | None:
    return shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if os.access(p, os.X_OK)), None)


def nginx(site: str, upstreams: list[int], directory: Path, connections: int = 64) -> Process:
    """Start nginx on a free port with an http-context site config like docs/examples/nginx.conf.

    The example's `listen 80;` and its two upstream servers are replaced by a
    loopback port and these upstream ports, so what runs is what the docs show.
    """
    binary = nginx_binary()
    if binary is None:
        raise RuntimeError("nginx is not installed: run `bash scripts/test-deps.sh`")
    port = free_port()
    documented = "    server 127.0.0.1:8001;\n    server 127.0.0.1:8002;\n"
    assert "listen 80;" in site and documented in site, "docs/examples/nginx.conf changed shape"
    upstream = "".join(f"    server 127.0.0.1:{upstream};\n" for upstream in upstreams)
    site = site.replace("listen 80;", f"listen 127.0.0.1:{port};").replace(documented, upstream)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "site.conf").write_text(site)
    main = NGINX_MAIN.format(
        prefix=directory, site=directory / "site.conf", connections=connections, files=4 * connections
    )
    (directory / "nginx.conf").write_text(main)
    args = [binary, "-e", str(directory / "error.log"), "-p", str(directory), "-c", str(directory / "nginx.conf")]
    return Process(f"nginx-{port}", args, port).start()


def daphne(env: dict[str, str], port: int | None = None, app: str = APPLICATION) -> Process:
    return server("daphne", env, port, app)


def probe(port: int) -> dict:
    """Return what the hub of a daphne serving tests.probe:application holds."""
    import json
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/__probe__/hub", timeout=10) as answer:
        return json.load(answer)


def rss_kb(pid: int) -> int:
    """Return the resident memory of pid in KiB (Linux /proc)."""
    status = Path(f"/proc/{pid}/status").read_text()
    return next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))


def server_env(database_url: str, redis_url: str = "", **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    env.update(DJANGO_SETTINGS_MODULE="project.settings", DATABASE_URL=database_url, **extra)
    if redis_url:
        env["REDIS_URL"] = redis_url
    return env


class SSEClient:
    """A blocking HTTP/1.1 client for a real server's event stream (http.client de-chunks)."""

    def __init__(self, port: int, path: str = "/livefeed/stream/", headers: dict[str, str] | None = None):
        import http.client

        from tests.sse_parser import Parser

        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        self.connection.request("GET", path, headers=headers or {})
        self.response = self.connection.getresponse()
        self.parser = Parser()

    def read(self, timeout: float) -> bytes:
        """Return the next bytes the server sent, b"" once the stream ended (the socket times out by itself)."""
        return self.response.read1(65536)

    def connected(self, timeout: float = 10) -> Self:
        """Read until the server says the stream is subscribed: events published from now on arrive."""
        self._read_until(lambda: "connected" in self.parser.comments, "the ': connected' comment", timeout)
        return self

    def events(self, count: int, timeout: float = 10):
        """Read until `count` events arrived in all; return them all."""
        self._read_until(lambda: len(self.parser.events) >= count, f"{count} events", timeout)
        return self.parser.events

    def _read_until(self, done, what: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no {what} within {timeout} s; got {len(self.parser.events)} events")
            chunk = self.read(left)
            if not chunk:
                raise EOFError(f"stream ended before {what}; got {len(self.parser.events)} events")
            self.parser.feed(chunk)

    def close(self) -> None:
        self.connection.close()


def stuck_client(port: int, cookie: str) -> socket.socket:
    """Open a stream with a tiny receive window that reads nothing once the stream is subscribed."""
    client = socket.socket()
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    client.settimeout(20)
    client.connect(("127.0.0.1", port))
    client.sendall(f"GET /livefeed/stream/ HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: {cookie}\r\n\r\n".encode())
    received = b""
    while b": connected" not in received:
        received += client.recv(4096)
    return client


def ended_by_server(client: socket.socket, timeout: float = 10) -> bool:
    """Read what is left, then close; tell whether the server had ended the connection (closed or reset)."""
    client.settimeout(timeout)
    try:
        while client.recv(65536):
            pass
    except ConnectionResetError:
        pass
    except TimeoutError:
        return False
    finally:
        client.close()
    return True


def sign_in_code(username: str) -> str:
    """Python for `manage.py shell -c` in any project: print, last, the key of a new session signed in as
    username (a user created if missing), as a browser's sessionid cookie would hold it."""
    return textwrap.dedent(f"""
        from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
        from django.contrib.sessions.backends.db import SessionStore
        user, _ = get_user_model()._default_manager.get_or_create(**{{get_user_model().USERNAME_FIELD: {username!r}}})
        session = SessionStore()
        session[SESSION_KEY] = str(user.pk)
        session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
        session[HASH_SESSION_KEY] = user.get_session_auth_hash()
        session.save()
        print(session.session_key)
    """)


def manage(env: dict[str, str], *args: str) -> str:
    """Run a manage.py command in its own process; return its output."""
    result = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    if result.returncode:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout
