"""An ASGI handler that serves streams without an OS thread each (docs/design.md#trap-9).

Django runs every ASGI request in its own ThreadSensitiveContext, whose worker
thread lives as long as the request: one thread per open stream. Streams do
their few sync steps (session, user, replay) on one shared thread instead;
every other request keeps Django's behaviour. Optional: without it streams work
the same, with a thread each.

Streams also run the middleware chain synchronously, in one trip to that
thread, which sends request_started first: under Django's async chain every
sync middleware takes two trips and the signal one more, and under a connect
storm each trip waits its turn on that one thread.
Every middleware still runs, in the order the settings give. Then the request
lets go of what only the middleware needed, since Django keeps it for as long
as the stream lasts. docs/performance.md has the measurements.

Under daphne a stream also gets a bound on what a client that stops reading
costs (MAX_UNSENT, `_Unsent`): daphne itself never makes a stream wait.
"""

import asyncio
import contextvars
import functools
import gc
import logging
import weakref
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from typing import Any, cast

import django
from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.core import signals
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler as DjangoASGIHandler
from django.core.handlers.asgi import ASGIRequest, get_script_prefix
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.urls import Resolver404, resolve, set_script_prefix

from livefeed import conf

logger = logging.getLogger("livefeed")

_stream_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="livefeed-streams")


# Streams setting up at once. Without a bound, every connect of a storm takes
# its turns on the one stream thread interleaved with all the others, and none
# gets its first byte before nearly all do: past a client's timeout, all fail.
_SETUP_SLOTS = 32
_slots: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore]" = weakref.WeakKeyDictionary()


class ASGIHandler(DjangoASGIHandler):
    def __init__(self) -> None:
        super().__init__()
        self._streams = _StreamHandler()

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and _is_stream(scope):
            await self._streams.serve(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)


class _StreamHandler(DjangoASGIHandler):
    """Django's handler with the middleware chain in sync mode, for streams only."""

    def load_middleware(self, is_async: bool = False) -> None:
        super().load_middleware(is_async=False)

    async def handle(self, scope: dict, receive: Any, send: Any) -> None:
        """Django 6's handle(), with request_started sent in the middleware's trip to the stream thread.

        Django sends it from the event loop, and its receivers are sync: a trip
        of its own to the thread and back, on every connect of a storm
        (docs/performance.md#one-trip-to-the-stream-thread). A client gone
        before that trip ran gets neither signal, as its receivers pair them.
        Async receivers of request_started run from that thread too
        (async_to_sync), holding it while they run.
        """
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        with closing(body_file):
            set_script_prefix(get_script_prefix(scope))
            request, error_response = self.create_request(scope, body_file)
            if request is None or error_response is not None:
                assert error_response is not None  # create_request() returns one of the two
                await signals.request_started.asend(sender=self.__class__, scope=scope)
                await self.send_response(error_response, send)
                await sync_to_async(error_response.close)()
                return
            response = None
            try:
                try:
                    async with asyncio.TaskGroup() as tasks:
                        tasks.create_task(self.listen_for_disconnect(receive))
                        response = await self.run_get_response(request)
                        await self.send_response(response, send)
                        raise _Processed
                except* (_Processed, RequestAborted):
                    pass
            except BaseExceptionGroup as group:  # the one error, as Django raises it
                if len(group.exceptions) == 1:
                    raise group.exceptions[0] from None
                raise
            if response is None:
                await sync_to_async(self._finished)(request)  # after any _started() still running there
            else:
                await sync_to_async(response.close)()

    async def get_response_async(self, request: HttpRequest) -> HttpResponseBase:
        # The async view runs on the event loop again (async_to_sync in
        # Django's _get_response); its own sync steps come back to this thread.
        response = await sync_to_async(self._started)(cast(ASGIRequest, request))
        if response.streaming:
            _release(request)
        return response

    def _started(self, request: ASGIRequest) -> HttpResponseBase:
        signals.request_started.send(sender=self.__class__, scope=request.scope)
        request._livefeed_started = True  # type: ignore[attr-defined]  # read by _finished()
        return self.get_response(request)

    def _finished(self, request: HttpRequest) -> None:
        # No response: the client left while its connect waited for the stream thread
        # (its _started() never ran) or while the middleware ran (it did).
        if getattr(request, "_livefeed_started", False):
            signals.request_finished.send(sender=self.__class__)

    @classmethod
    def chunk_bytes(cls, data: Any) -> Any:
        # Django's generator, for the one message that nearly every stream
        # chunk is: a tuple costs less, per delivery (docs/performance.md).
        if len(data) <= cls.chunk_size:
            return ((data, True),)
        return super().chunk_bytes(data)

    async def send_response(self, response: HttpResponseBase, send: Any) -> None:
        # A stream's live chunks may skip Django's and daphne's send path while
        # its generator waits for them (livefeed.hub.Reader.push).
        unsent = getattr(send, "send", None)
        write_around = getattr(response, "write_around", None)
        if isinstance(unsent, _Unsent) and unsent.transport is not None and write_around is not None:
            write_around(unsent)
        await super().send_response(response, send)

    async def serve(self, scope: dict, receive: Any, send: Any) -> None:
        slots = _slots.setdefault(asyncio.get_running_loop(), asyncio.Semaphore(_SETUP_SLOTS))
        await slots.acquire()
        sender = _Sender(_bounded(send), slots)
        try:
            async with ThreadSensitiveContext(executor=_stream_executor):
                await self.handle(scope, receive, sender)
        finally:
            sender.release()


class _Processed(Exception):
    """The response is out: ends handle()'s wait for the client's disconnect."""


class _Sender:
    """The send() of one stream: frees its setup slot once set up, and Django's copy of its headers.

    Django's send_response keeps the list of encoded headers it sends in a local
    for as long as the response streams: hours, times every open stream
    (docs/design.md#trap-14). The server gets a list of its own, which it may
    keep as long as it needs, and Django's is emptied once sent.
    """

    __slots__ = ("send", "slots")

    def __init__(self, send: Any, slots: asyncio.Semaphore) -> None:
        self.send = send
        self.slots: asyncio.Semaphore | None = slots

    async def __call__(self, message: Mapping[str, Any]) -> None:
        headers = message.get("headers")
        if message["type"] == "http.response.body":
            self.release()  # set up: the next stream may start
            if not message.get("more_body", False):
                # daphne starts a request pipelined behind this response in the task that ends it,
                # and that request would inherit this stream's thread-sensitive context, which
                # ends with it (docs/design.md#trap-18): end it from a context of its own.
                await asyncio.create_task(_sent(self.send, message), context=contextvars.Context())
                return
        elif isinstance(headers, list):
            await self.send({**message, "headers": list(headers)})
            headers.clear()
            return
        await self.send(message)

    def release(self) -> None:
        if self.slots is not None:
            self.slots.release()
            self.slots = None


async def _sent(send: Any, message: Mapping[str, Any]) -> None:
    await send(message)


class _Unsent:
    """daphne's send() for one stream, with a push producer on its Twisted request: how far its client fell behind.

    daphne's send() returns at once and Twisted buffers what the client has not
    read, so the stream never waits and its mailbox bound never trips: a client
    that stops reading would hold every later event in this process's memory.
    Twisted pauses a registered producer when the connection's buffer fills and
    resumes it once the buffer is empty: what is written in between is unsent.
    """

    # One small object per open stream: slots, and no closures (docs/performance.md).
    __slots__ = ("request", "send", "transport", "limit", "paused", "counting", "count")

    def __init__(self, request: Any, send: Any, limit: float) -> None:
        self.request, self.send, self.limit = request, send, limit
        self.transport = _plain_socket(request)
        self.paused = self.counting = False
        self.count = 0
        request.registerProducer(self, True)

    async def __call__(self, message: Mapping[str, Any]) -> None:
        body = message.get("body", b"")
        if message["type"] == "http.response.body":
            if not message.get("more_body", False):
                self.unregister()
            elif body and self.write(body):
                return
        await self.send(message)
        self.wrote(len(body))

    def pauseProducing(self) -> None:
        # Django sends one large chunk (a long replay) as many 64 KB messages
        # at once, which give the client no chance to read: count only what is
        # written once the loop has had a turn to flush.
        self.paused = True
        asyncio.get_running_loop().call_soon(self._start_counting)

    def _start_counting(self) -> None:
        self.counting = self.paused and self.request.producer is self

    def resumeProducing(self) -> None:
        self.paused = self.counting = False
        self.count = 0

    def stopProducing(self) -> None:
        pass

    def wrote(self, size: int) -> None:
        """Count a write made while the client reads nothing; past the limit, hang up."""
        if not self.counting:
            return
        self.count += size
        if self.count > self.limit and self.request.channel is not None and not self.request.finished:
            logger.warning("Slow client: %d bytes unsent; closing its stream to catch up from the log", self.count)
            self.limit = float("inf")  # once: the stream ends when daphne reports the connection lost
            # Drops what Twisted buffered; the browser reconnects with Last-Event-ID.
            self.request.transport.abortConnection()

    def unregister(self) -> None:
        if self.request.producer is self and self.request.channel is not None:
            self.request.unregisterProducer()  # Twisted logs an error if a finished response still has one

    def write(self, body: bytes) -> bool:
        """Write a body chunk to the client's socket now, if it takes it; False: send() it the usual way."""
        if self._write(body):
            self.wrote(len(body))
            return True
        return False

    def _write(self, body: bytes) -> bool:
        """Write a body chunk straight to the client's socket; False: Twisted must take it.

        Twisted's write queues the bytes and registers the socket as a writer with
        the event loop, which sends them on its next turn and unregisters it: two
        epoll_ctl calls and a loop callback per chunk, most of what a delivery
        cost under daphne (docs/performance.md#delivery-cpu-under-daphne-writing-straight-to-the-socket).
        asyncio's own transports try the send first; so does this. Twisted takes
        the chunk when the headers are not out yet, the response is not chunked,
        the transport is not a plain TCP or UNIX socket (TLS) or still holds
        unsent bytes (which must leave first).
        """
        request, transport = self.request, self.transport
        if transport is None:
            return False
        if not request.chunked or request.finished or request._disconnected or request.channel is None:
            return False
        if not transport.connected or transport.disconnecting or transport._writeDisconnected:
            return False
        if transport.dataBuffer or transport._tempDataLen:  # keep the order: what is queued goes first
            return False
        data = b"%x\r\n%s\r\n" % (len(body), body)  # one chunk, as Twisted's Request.write frames it
        try:
            sent = transport.socket.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            return False  # Twisted's own write finds the connection gone and cleans up
        request.sentLength += len(body)
        if sent < len(data):
            transport.write(data[sent:])  # the rest when the socket drains; pauses producers when it backs up
        return True


def _bounded(send: Any) -> Any:
    """Return send, closing the connection of a client more than MAX_UNSENT bytes behind (daphne)."""
    # daphne's send is functools.partial(Server.handle_reply, its Twisted request).
    request = send.args[0] if isinstance(send, functools.partial) and send.args else None
    if not hasattr(request, "registerProducer") or not hasattr(request, "transport"):
        return send  # another server; uvicorn waits in send() itself, so QUEUE_SIZE bounds the stream
    return _Unsent(request, send, conf.get("MAX_UNSENT"))


def _plain_socket(request: Any) -> Any:
    """Return the request's Twisted transport if chunks may be written to its socket directly, else None."""
    try:
        from twisted.internet import tcp
    except ImportError:
        return None
    transport = getattr(request.channel, "transport", None)
    if not isinstance(transport, tcp.Server) or getattr(transport, "TLS", False):
        return None
    return transport


# What the request holds that nothing reads once every middleware has handled
# the response. Django keeps the request alive for as long as the response
# streams: for a stream that is hours, times every open stream
# (docs/performance.md, "What changed").
# META becomes empty rather than absent: request.headers and friends still work.
_SPENT = ("user", "_cached_user", "auser", "session", "_messages", "resolver_match", "COOKIES", "GET", "headers")


def _release(request: HttpRequest) -> None:
    for name in _SPENT:
        request.__dict__.pop(name, None)
    request.META = {}


def _is_stream(scope: dict) -> bool:
    from livefeed.views import stream

    path = scope["path"].removeprefix(scope.get("root_path", ""))
    try:
        return resolve(path).func is stream
    except Resolver404:
        return False


def get_asgi_application() -> ASGIHandler:
    """Return the Django ASGI application with thread-free streams."""
    django.setup(set_prefix=False)
    _tune_gc()
    return ASGIHandler()


def _tune_gc() -> None:
    # Open streams keep many objects alive and a broadcast puts many more in
    # flight; at Python's default threshold young collections keep promoting
    # them until full collections walk them all, pausing every stream
    # (docs/performance.md#garbage-collection).
    from livefeed import conf

    threshold = conf.get("GC_THRESHOLD")
    if threshold is not None:
        gc.set_threshold(threshold, *gc.get_threshold()[1:])
        # What Django set up lives as long as the process: full collections need not
        # walk it. They run most under a reconnect storm, as the streams it replaces
        # leave their garbage (docs/performance.md#start-up-objects-frozen).
        gc.collect()
        gc.freeze()
