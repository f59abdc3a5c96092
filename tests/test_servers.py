"""The stream on every ASGI server livefeed supports, each as a real process (docs/deploy.md#which-asgi-server)."""

import contextlib
import http.client
import json
import os
import signal
import socket
import time

import pytest
from django.contrib.auth.models import User

from tests import servers
from tests.streams import cookie_header, session_for

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture(params=sorted(servers.SERVER_ARGS))
def serve(request, database_url, redis_url):
    """Start one server of the parametrized kind; it is stopped after the test."""
    started = []

    def start(**env: str) -> servers.Process:
        started.append(servers.server(request.param, servers.server_env(database_url, redis_url, **env)))
        return started[-1]

    yield start
    for process in started:
        process.stop()


@pytest.fixture
def cookie():
    return {"Cookie": cookie_header(session_for(User.objects.create_user("alice", password="x")))}


def test_stream_heartbeats_and_an_event_from_another_process(serve, cookie, database_url, redis_url):
    server = serve(LIVEFEED_HEARTBEAT="0.5")
    stream = servers.SSEClient(server.port, headers=cookie)
    try:
        assert stream.response.status == 200
        assert stream.response.getheader("Content-Type") == "text/event-stream; charset=utf-8"
        assert stream.response.getheader("Connection") is None  # hop-by-hop: never set by livefeed
        stream.connected()
        while "keep-alive" not in stream.parser.comments:
            stream.parser.feed(stream.read(10))
        publish = "import livefeed; livefeed.publish('broadcast', 'tick', {'n': 1})"
        servers.manage(servers.server_env(database_url, redis_url), "shell", "-c", publish)
        (event,) = stream.events(1)
    finally:
        stream.close()
    assert (event.type, json.loads(event.data)) == ("tick", {"n": 1})


def test_under_daphne_a_middleware_that_replaced_the_streams_content_sees_every_live_chunk(
    cookie, database_url, redis_url
):
    """Live chunks may go straight to daphne's socket (livefeed.hub.Reader.push); not past a middleware's content."""
    env = servers.server_env(database_url, redis_url)
    server = servers.daphne({**env, "DJANGO_SETTINGS_MODULE": "tests.marked_site"})
    try:
        stream = servers.SSEClient(server.port, headers=cookie).connected()
        publish = "import livefeed; livefeed.publish('broadcast', 'tick', {'n': 1})"
        servers.manage(env, "shell", "-c", publish)
        stream.events(1)
        with contextlib.suppress(TimeoutError):  # the event's mark follows it in the same chunk
            stream._read_until(lambda: stream.parser.comments.count("marked") >= 3, "the event's mark", timeout=5)
        stream.close()
    finally:
        server.stop()
    # One mark for each chunk: the retry, the connected comment, the event.
    assert stream.parser.comments == ["marked", "connected", "marked", "marked"]


def test_under_daphne_a_request_pipelined_behind_a_stream_is_answered_once_the_stream_ends(
    cookie, database_url, redis_url
):
    """HTTP/1.1 lets a client send its next request before the stream's response ends (MAX_AGE ends it here)."""
    env = {**servers.server_env(database_url, redis_url), "DJANGO_SETTINGS_MODULE": "tests.short_streams_site"}
    server = servers.daphne(env)
    try:
        client = socket.create_connection(("127.0.0.1", server.port), timeout=15)
        stream = f"GET /livefeed/stream/ HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: {cookie['Cookie']}\r\n\r\n"
        health = "GET /livefeed/health/ HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        client.sendall((stream + health).encode())
        received = b""
        while chunk := client.recv(65536):  # until the server closes, after the second response
            received += chunk
        client.close()
    finally:
        server.stop()
    streamed, after = received.split(b"\r\n0\r\n\r\n", 1)
    assert b": connected" in streamed
    assert after.startswith(b"HTTP/1.1 200 "), after[:300]


def test_a_client_that_goes_away_releases_its_stream(serve, cookie):
    server = serve(LIVEFEED_HEARTBEAT="0.5")
    streams = [servers.SSEClient(server.port, headers=cookie).connected() for _ in range(2)]
    assert open_streams(server.port) == 2
    streams[0].close()
    # The server notices the closed socket by itself (a disconnect, or a failed heartbeat write).
    deadline = time.monotonic() + 20
    while open_streams(server.port) != 1 and time.monotonic() < deadline:
        time.sleep(0.1)
    try:
        assert open_streams(server.port) == 1
    finally:
        streams[1].close()


def test_sigterm_spreads_reconnections_and_refuses_new_streams_until_the_server_stops(serve, cookie):
    server = serve(LIVEFEED_SHUTDOWN_GRACE="5")
    streams = [servers.SSEClient(server.port, headers=cookie).connected() for _ in range(3)]
    os.kill(server.pid, signal.SIGTERM)  # to the server's main process, as systemd's KillMode=mixed does
    delays = []
    for stream in streams:
        while chunk := stream.response.read1(65536):  # read to the end the server gives
            stream.parser.feed(chunk)
        delays.append(stream.parser.retry)
        stream.close()
    # The streams ended within the grace: the server still answers, refusing new streams.
    late = servers.SSEClient(server.port, headers=cookie)
    assert late.response.status == 503
    assert late.response.getheader("Retry-After") == "5"
    late.close()
    assert server.process is not None and server.process.wait(20) is not None  # then the server stops by itself
    assert all(delay is not None and 3000 <= delay <= 13000 for delay in delays)
    assert len(set(delays)) > 1  # not all the same second


def open_streams(port: int) -> int:
    client = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        client.request("GET", "/livefeed/health/")
        return json.loads(client.getresponse().read())["streams"]
    finally:
        client.close()
