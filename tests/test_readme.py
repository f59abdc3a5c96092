"""The README's commands run: the demo of its Quick start, "Try it", and two daphne processes on Redis.

The commands are read from README.md and run as written; only what must differ on a test
machine is substituted (free ports, a scratch database, a private Redis, a session key).
"""

import shlex
import shutil
import subprocess

import pytest

from tests import servers
from tests.test_docs import README, Block, CurlStream, assert_same_events, blocks, sse

pytestmark = pytest.mark.e2e


def readme_block(containing: str) -> Block:
    (block,) = [block for block in blocks(README) if containing in block.body]
    return block


def block_after(block: Block) -> Block:
    every = blocks(README)
    return every[every.index(block) + 1]


def shell(command: str, env: dict[str, str]) -> str:
    run = subprocess.run(["bash", "-c", command], cwd=servers.ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    return run.stdout


def session_of(username: str, env: dict[str, str]) -> str:
    return servers.manage(env, "shell", "-c", servers.sign_in_code(username)).split()[-1]


@pytest.fixture
def demo_env(tmp_path):
    """The demo without Redis, on a scratch SQLite file instead of the checkout's db.sqlite3."""
    return servers.server_env(f"sqlite:///{tmp_path / 'demo.sqlite3'}", PORT=str(servers.free_port()))


def test_quick_start_demo_then_try_it_with_curl(demo_env):
    if not shutil.which("curl") or not shutil.which("make"):
        pytest.skip("needs curl and make, as the README does")
    (make_demo, _make_test) = readme_block("make demo").commands()
    port = int(demo_env["PORT"])
    demo = servers.Process(f"make-demo-{port}", ["bash", "-c", f"exec {make_demo}"], port, demo_env)
    demo.start(timeout=120)  # migrate and the demo logins come first
    try:
        watch = readme_block("curl -N")
        (curl,) = watch.commands()
        curl = curl.replace("<bob's session id>", session_of("bob", demo_env)).replace(":8000/", f":{port}/")
        stream = CurlStream(curl, servers.ROOT, demo_env).connected()
        try:
            (send,) = readme_block("livefeed.notify(recipient=User.objects.get(username='bob')").commands()
            shell(send, demo_env)
            shown = sse(block_after(watch).body)
            assert_same_events(stream.events(len(shown.events)), shown.events)
        finally:
            stream.close()
    finally:
        demo.stop()


def test_two_daphne_processes_on_redis_as_the_readme_starts_them(database_url, redis_url):
    lines = readme_block(".venv/bin/daphne -b 127.0.0.1 -p 8001").commands()
    export, migrate, *daphnes, publish = lines
    # export REDIS_URL=... DATABASE_URL=...: this test's Redis and database instead
    assert {assignment.split("=", 1)[0] for assignment in shlex.split(export)[1:]} == {"REDIS_URL", "DATABASE_URL"}
    env = servers.server_env(database_url, redis_url)
    shell(migrate, env)
    started = []
    try:
        for line in daphnes:
            port = servers.free_port()
            args = shlex.split(line.removesuffix("&").strip())
            args[args.index("-p") + 1] = str(port)
            started.append(servers.Process(f"readme-daphne-{port}", args, port, env).start())
        cookie = {"Cookie": f"sessionid={session_of('reader', env)}"}
        streams = [servers.SSEClient(server.port, headers=cookie).connected() for server in started]
        try:
            shell(publish, env)
            received = [stream.events(1)[0] for stream in streams]
        finally:
            for stream in streams:
                stream.close()
    finally:
        for server in started:
            server.stop()
    assert len(received) == 2
    assert {(event.type, event.data) for event in received} == {("notification", '{"title":"hi"}')}
