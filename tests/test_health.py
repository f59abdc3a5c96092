"""GET /livefeed/health/: in-process, then on a real daphne whose Redis goes away."""

import http.client
import json
import os
import signal
import socket

import pytest
from channels.layers import channel_layers
from django.contrib.auth.models import User
from django.db import connection

from livefeed.models import Event
from tests import servers
from tests.streams import Stream, cookie_header, run, session_for

pytestmark = pytest.mark.django_db(transaction=True)


async def health(timeout: float = 5) -> tuple[int | None, dict]:
    answer = await Stream("/livefeed/health/").open(timeout)
    return answer.status, await answer.json(timeout)


def use_redis(settings, url: str) -> None:
    settings.CHANNEL_LAYERS = {
        "default": {"BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer", "CONFIG": {"hosts": [url]}}
    }
    channel_layers.backends.clear()


def test_healthy_answers_ok_and_counts_open_streams_without_signing_in():
    session = session_for(User.objects.create_user("alice", password="x"))

    async def scenario():
        before = await health()
        stream = await (await Stream(session_key=session).open()).connected()
        during = await health()
        await stream.close()
        return before, during, await health()

    before, during, after = run(scenario)
    assert before == (200, {"layer": "ok", "log": "ok", "streams": 0})
    assert during == (200, {"layer": "ok", "log": "ok", "streams": 1})
    assert after == (200, {"layer": "ok", "log": "ok", "streams": 0})


def test_redis_layer_up_is_ok(redis_layer):
    assert run(health) == (200, {"layer": "ok", "log": "ok", "streams": 0})


def test_unreachable_redis_is_503_layer_down(settings):
    use_redis(settings, f"redis://127.0.0.1:{servers.free_port()}/0")  # nothing listens there
    status, body = run(health)
    assert (status, body) == (503, {"layer": "down", "log": "ok", "streams": 0})
    assert "127.0.0.1" not in json.dumps(body)


def test_hung_redis_answers_503_within_the_health_timeout(settings):
    """A server that takes connections and never answers: the probe must not wait for redis-py's timeouts."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)  # the kernel completes connects; nothing ever reads or replies
        use_redis(settings, f"redis://127.0.0.1:{silent.getsockname()[1]}/0")
        settings.LIVEFEED = {"HEALTH_TIMEOUT": 0.2}
        # Under redis-py's own timeouts, far above the 0.2 s deadline: only a bounded check answers in time.
        assert run(lambda: health(timeout=3)) == (503, {"layer": "down", "log": "ok", "streams": 0})


def test_unreadable_event_log_is_503_log_down():
    with connection.schema_editor() as editor:
        editor.delete_model(Event)
    try:
        status, body = run(health)
    finally:
        with connection.schema_editor() as editor:
            editor.create_model(Event)
    assert (status, body) == (503, {"layer": "ok", "log": "down", "streams": 0})


@pytest.mark.e2e
def test_daphne_reports_redis_down_then_up_again(database_url):
    alice = User.objects.create_user("alice", password="x")
    redis = servers.redis_server()
    server = servers.daphne(servers.server_env(database_url, f"redis://127.0.0.1:{redis.port}/0"))
    stream = servers.SSEClient(server.port, headers={"Cookie": cookie_header(session_for(alice))})
    try:
        stream.connected()
        up = get_health(server.port)
        os.kill(redis.pid, signal.SIGSTOP)  # hung: takes connections, answers nothing
        hung = get_health(server.port)
        os.kill(redis.pid, signal.SIGCONT)
        redis.stop()  # gone: connections refused
        gone = get_health(server.port)
        redis.start()
        back = get_health(server.port)
    finally:
        stream.close()
        server.stop()
        redis.stop(signal.SIGKILL)  # also if the test failed while it was stopped
    assert up == (200, {"layer": "ok", "log": "ok", "streams": 1})
    assert hung == gone == (503, {"layer": "down", "log": "ok", "streams": 1})
    assert back == (200, {"layer": "ok", "log": "ok", "streams": 1})


def get_health(port: int) -> tuple[int, dict]:
    # A timeout under redis-py's own (5 s): a check that waited for it would fail here.
    client = http.client.HTTPConnection("127.0.0.1", port, timeout=4)
    try:
        client.request("GET", "/livefeed/health/")
        response = client.getresponse()
        return response.status, json.loads(response.read())
    finally:
        client.close()
