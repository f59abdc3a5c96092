"""The SSE stream view (docs/design.md#contracts)."""

import asyncio
import functools
import logging
import random
from collections.abc import AsyncIterator, Callable
from typing import Any

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest, JsonResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase, ResponseHeaders
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET

from livefeed import conf, eventlog, history, instruments, language, revocation, sse, tickets
from livefeed.channels import can_read, default_channels, session_tag, validate
from livefeed.exceptions import ChannelDenied, InvalidChannel, TooManyStreams
from livefeed.hub import END, Hub, Reader, get_hub

logger = logging.getLogger("livefeed")

_MAX_CHANNELS = 32
_EVENT_STREAM = "text/event-stream; charset=utf-8"


# Django refuses ATOMIC_REQUESTS for async views; a stream holds no transaction
# open for hours anyway: each of its queries commits on its own.
@transaction.non_atomic_requests
@csrf_exempt  # GET only and changes nothing: let other methods reach the 405
@require_GET
async def stream(request: HttpRequest) -> HttpResponseBase:
    """Open the signed-in user's event stream, resuming after Last-Event-ID."""
    output = request.GET.get("format", "json")  # html: notifications as fragments, for htmx
    if output not in ("json", "html"):
        return _error(400, f"Unknown format {output!r}: use html (for htmx) or json (the default).")
    html = output == "html"
    try:
        admitted = _admit(request)  # a returning browser's ticket: no database (livefeed.tickets)
        if admitted is None:
            user, channels, grant, defaults, language_code = await _open(request)
            if channels is None:
                refused = _error(401, "Sign in to open a livefeed stream.")
                tickets.forget(refused, request)
                return refused
            user_key = user.pk if user.is_authenticated else None
            session = session_tag(request.session.session_key)
        else:
            user_key, channels, grant, session, language_code = admitted
        hub = get_hub()
        if hub.closing:
            raise TooManyStreams("This server is shutting down.", per_user=False)
        reader = _reserve(hub, request, user_key, session, channels, html, language_code)
        revocation.track(reader, grant)  # re-checked while it streams (livefeed.revocation)
    except InvalidChannel as error:
        return _error(400, str(error))
    except ChannelDenied as error:
        return _error(403, str(error))
    except TooManyStreams as error:
        if error.per_user:
            return _error(429, str(error))
        busy = _error(503, str(error))
        busy["Retry-After"] = "5"
        return busy
    last_id = _last_event_id(request)
    logger.debug("Stream opened: user=%s channels=%s last_id=%s", user_key, channels, last_id)
    instruments.connects.inc()
    spent: list[Callable[[], Any]] = []  # what to let go of once the headers are sent
    response = _stream_headers(_EventStream(_events(hub, reader, last_id, html, spent), reader))
    if admitted is None and user_key is not None:
        tickets.issue(response, request, user, channels, defaults, language_code)
    # The response lives as long as the stream: its headers (the ticket among them) need not (docs/design.md#trap-14).
    spent.append(functools.partial(setattr, response, "headers", ResponseHeaders({})))
    return response


def event_stream_response(content: AsyncIterator[bytes]) -> StreamingHttpResponse:
    """Return a text/event-stream response that no cache, proxy or middleware holds back."""
    return _stream_headers(StreamingHttpResponse(content, content_type=_EVENT_STREAM))


class _EventStream(StreamingHttpResponse):
    """The stream view's response: Django reads its generator's bytes without wrapping each chunk.

    StreamingHttpResponse passes every chunk through two async generators of
    its own and make_bytes(), for content that may yield text; the stream view's
    generator yields bytes only, and each of its chunks is a delivery
    (docs/performance.md#the-stream-body-without-djangos-wrappers).
    A middleware that replaced the content is read the usual way.
    """

    def __init__(self, content: AsyncIterator[bytes], reader: Reader) -> None:
        super().__init__(content, content_type=_EVENT_STREAM)
        self._own = self._content()
        self._reader = reader

    def write_around(self, sink: Any) -> None:
        """Let live chunks go straight to sink, the client's socket, while the generator waits for them.

        Only what the generator would have yielded as it is: content a
        middleware replaced sees every chunk (livefeed.hub.Reader.push).
        """
        if self._content() is self._own:
            self._reader.sink = sink

    def __aiter__(self) -> AsyncIterator[bytes]:
        if self._content() is self._own:
            return self._own
        return super().__aiter__()  # a middleware's content: it may yield text

    def _content(self) -> Any:
        return vars(self)["_iterator"]  # what Django iterates; not in its type stubs


def _stream_headers(response: StreamingHttpResponse) -> StreamingHttpResponse:
    response["Cache-Control"] = "no-cache, no-transform"
    response["X-Accel-Buffering"] = "no"
    # GZipMiddleware skips a response that already names its encoding (docs/design.md#trap-11).
    response["Content-Encoding"] = "identity"
    return response


def _reserve(
    hub: Hub,
    request: HttpRequest,
    user_key: Any,
    session: str | None,
    channels: list[str],
    html: bool,
    language_code: str | None = None,
) -> Reader:
    """Reserve a stream, counted per user (user_key: their pk), or per client address when anonymous."""
    if user_key is not None:
        return hub.reserve(channels, user_key, session, html=html, language=language_code)
    # Per address, not per session: a client can drop its cookie, not its address.
    address = ("anonymous", request.META.get("REMOTE_ADDR", ""))
    try:
        limit = conf.get("MAX_ANONYMOUS_STREAMS_PER_ADDRESS")
        return hub.reserve(channels, address, session, limit=limit, html=html)
    except TooManyStreams as error:
        if error.per_user:
            raise TooManyStreams("Too many open anonymous streams from this address.", per_user=True) from None
        raise


def _error(status: int, message: str) -> JsonResponse:
    instruments.refusals.labels(status).inc()
    return JsonResponse({"error": message}, status=status)


def _last_event_id(request: HttpRequest) -> int | None:
    """Return the client's resume point; anything but a sane integer counts as none."""
    value = request.headers.get("Last-Event-ID") or request.GET.get("lastEventId") or ""
    value = value.strip()
    if value.isdigit() and value.isascii() and len(value) <= 18:
        return int(value)
    return None


def _requested(request: HttpRequest) -> list[str]:
    """Return the custom channels the request asks for, checked for form only."""
    requested = [validate(name) for name in request.GET.getlist("channel")]
    if len(requested) > _MAX_CHANNELS:
        raise InvalidChannel(f"At most {_MAX_CHANNELS} channels per stream.")
    return requested


def _admit(request: HttpRequest) -> tuple[Any, list[str], revocation.Grant, str, str | None] | None:
    """Return the user pk, channels, grant, session tag and language a good ticket admits; None: ask the session."""
    ticket = tickets.read(request)
    if ticket is None:
        return None
    channels = tickets.channels(ticket, _requested(request))
    if channels is None:
        return None  # a channel the ticket does not list: the session decides, and issues a new ticket
    grant = ticket.grant(request.COOKIES[settings.SESSION_COOKIE_NAME])
    return ticket.user_pk, channels, grant, ticket.session, ticket.language or None


def _channels(
    request: HttpRequest,
) -> tuple[Any, list[str] | None, revocation.Grant | None, list[str], str | None]:
    """Return the user, the channels they may read (None: must sign in first), their grant,
    built-in channels and language."""
    user = request.user  # the session and user queries run here, in this thread
    if not user.is_authenticated and not conf.get("ALLOW_ANONYMOUS"):
        return user, None, None, [], None
    requested = _requested(request)
    defaults = default_channels(user)
    channels = list(defaults)
    for name in requested:
        if not can_read(user, name, channels):
            raise ChannelDenied(f"You may not read channel {name!r}.")
        if name not in channels:
            channels.append(name)
    grant = revocation.grant_for(user, request.session.session_key, channels)
    # Read once: a stream shows translated notifications in it until it reconnects (livefeed.language).
    reads_in = language.of_users([user.pk]).get(user.pk) if user.is_authenticated else None
    return user, channels, grant, defaults, reads_in


# All connect-time queries in one trip to a worker thread (each trip costs as
# much as a query under a connect storm), which then closes its DB connection:
# an idle stream must not hold one for its whole life (docs/design.md#trap-10).
_open = eventlog.in_thread(_channels)


async def _events(
    hub: Hub, reader: Reader, last_id: int | None, html: bool = False, spent: list[Callable[[], Any]] | None = None
) -> AsyncIterator[bytes]:
    # Parked on `await reader.take()`, never on a yield, so a disconnect
    # cancels it there and the finally below runs (docs/design.md#trap-3).
    try:
        # Headers leave with the first body chunk: send it before any wait (docs/design.md#trap-2).
        yield sse.retry(conf.get("RETRY"))
        while spent:  # asked for the next chunk: the headers are out
            spent.pop()()
        await hub.add(reader)  # subscribe before replaying: nothing falls between
        yield sse.comment("connected")  # from here on, every event reaches this stream
        if last_id is not None:
            instruments.replays.inc()
            chunks, reader.seen = await history.replay(reader.channels, last_id, html, reader.language)
            if chunks:
                yield b"".join(chunks)
        while True:
            # Whatever queued up meanwhile leaves as one chunk: one write, not many.
            chunk, ending = _chunk(await reader.take(), reader.seen)
            if chunk:
                yield chunk
            if ending or reader.overflowed and not reader.items:
                return  # the client reconnects with Last-Event-ID and replays the rest
    except asyncio.CancelledError:
        raise
    except Exception:
        # An exception escaping to daphne hangs the client and stalls daphne's
        # cleanup for the whole process (docs/design.md#trap-4): end the stream here.
        logger.exception("livefeed stream failed; closing it")
    finally:
        await hub.remove(reader)


def _chunk(items: list[tuple[int | None, bytes]], seen: int) -> tuple[bytes, bool]:
    """Join queued payloads, skipping what replay covered; tell whether the stream must end."""
    parts = []
    for item in items:
        if item is END:
            # Spread the reconnections of a shutdown or expiry over SHUTDOWN_SPREAD ms.
            parts.append(sse.retry(conf.get("RETRY") + random.randint(0, conf.get("SHUTDOWN_SPREAD"))))
            return b"".join(parts), True
        event_id, payload = item
        # Ids become visible in increasing order, so a live event at or below
        # the replayed high-water mark was already replayed.
        if event_id is None or event_id > seen:
            parts.append(payload)
    return b"".join(parts), False
