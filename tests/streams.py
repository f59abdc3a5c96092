"""Drive the stream view through the real ASGI application, in-process.

AsyncClient skips the view's cleanup and HttpCommunicator hangs on an infinite
stream (docs/design.md#trap-13), so this sends ASGI messages itself and ends with
`http.disconnect`, as daphne does when a browser goes away.
"""

import asyncio
import json
from http.cookies import SimpleCookie

from asgiref.sync import async_to_sync, sync_to_async
from asgiref.testing import ApplicationCommunicator
from django.conf import settings

import livefeed
from livefeed import hub
from livefeed.asgi import get_asgi_application
from tests.sse_parser import Event, Parser


class Stream:
    def __init__(self, path: str = "/livefeed/stream/", *, session_key: str | None = None, headers=(), client_buffer=0):
        """client_buffer > 0 makes the client slow: the server's send() blocks once
        that many messages wait unread, as it does when a TCP window fills."""
        path, _, query = path.partition("?")
        cookies = [value for name, value in headers if name.lower() == "cookie"]
        if session_key:
            cookies.append(f"{settings.SESSION_COOKIE_NAME}={session_key}")
        # One Cookie header, as a browser sends over HTTP/1.1: Django 5.2 joins several with ","
        # and so loses all but one (Django 6 joins them with "; ").
        raw_headers = [(b"host", b"testserver")]
        raw_headers += [(k.encode(), v.encode()) for k, v in headers if k.lower() != "cookie"]
        if cookies:
            raw_headers.append((b"cookie", "; ".join(cookies).encode()))
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": query.encode(),
            "root_path": "",
            "headers": raw_headers,
            "client": ("127.0.0.1", 50000),
            "server": ("testserver", 80),
        }
        self.communicator = ApplicationCommunicator(get_asgi_application(), scope)
        if client_buffer:
            self.communicator._output_queue = asyncio.Queue(client_buffer)
        self.parser = Parser()
        self.status: int | None = None
        self.headers: dict[str, str] = {}
        self.body = b""

    async def open(self, timeout: float = 5) -> "Stream":
        await self.communicator.send_input({"type": "http.request", "body": b"", "more_body": False})
        start = await self.communicator.receive_output(timeout)
        assert start["type"] == "http.response.start", start
        self.status = start["status"]
        self.headers = {k.decode().lower(): v.decode() for k, v in start["headers"]}
        return self

    async def chunk(self, timeout: float = 5) -> bytes:
        message = await self.communicator.receive_output(timeout)
        assert message["type"] == "http.response.body", message
        self.body += message.get("body", b"")
        self.parser.feed(message.get("body", b""))
        return message.get("body", b"")

    async def connected(self, timeout: float = 5) -> "Stream":
        """Read until the server says the stream is subscribed: events published after it arrive."""
        async with asyncio.timeout(timeout):
            while "connected" not in self.parser.comments:
                await self.chunk(timeout)
        return self

    async def receive_one(self, channel: str, event: str, data: dict) -> list[Event]:
        """Open, wait until subscribed, publish one event on channel, read it, disconnect; return the events."""
        await (await self.open()).connected()
        await sync_to_async(livefeed.publish)(channel, event, data)
        events = await self.events(1)
        await self.close()
        return events

    async def json(self, timeout: float = 5) -> dict:
        """Read a whole non-streaming answer (an error) as JSON."""
        more = True
        while more:
            message = await self.communicator.receive_output(timeout)
            self.body += message.get("body", b"")
            more = message.get("more_body", False)
        return json.loads(self.body)

    async def events(self, count: int, timeout: float = 5) -> list[Event]:
        """Read until `count` events have been dispatched in all; return them all."""
        async with asyncio.timeout(timeout):
            while len(self.parser.events) < count:
                await self.chunk(timeout)
        return self.parser.events

    async def finish(self, timeout: float = 5) -> None:
        """Read until the server ends the response by itself."""
        more = True
        while more:
            message = await self.communicator.receive_output(timeout)
            self.body += message.get("body", b"")
            self.parser.feed(message.get("body", b""))
            more = message.get("more_body", False)
        await self.communicator.wait(timeout)

    async def close(self, timeout: float = 5) -> None:
        """Disconnect like a browser and wait for the application to finish."""
        await self.communicator.send_input({"type": "http.disconnect"})
        await self.communicator.wait(timeout)


async def publish_notifications(*sent: tuple[str, dict]) -> None:
    """Publish a notification event with each data on its channel, in order, as another process would."""

    def publish_all() -> None:
        for channel, data in sent:
            livefeed.publish(channel, "notification", data)

    await sync_to_async(publish_all)()


def session_for(user) -> str:
    """Return the key of a saved session signed in as user."""
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore

    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.save()
    assert session.session_key is not None  # just saved
    return session.session_key


def cookie_header(session_key: str) -> str:
    cookie = SimpleCookie()
    cookie[settings.SESSION_COOKIE_NAME] = session_key
    return cookie.output(header="", sep="").strip()


def run(scenario):
    """Run an async scenario on a fresh event loop, then stop that loop's hub."""

    async def main():
        try:
            return await scenario()
        finally:
            current = hub._hubs.get(asyncio.get_running_loop())
            if current:
                await current.close()

    return async_to_sync(main)()
