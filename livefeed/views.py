"""The SSE stream view (DESIGN §3 "Stream")."""

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

from asgiref.sync import sync_to_async
from django.db import connections
from django.db.models import Max, Min
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET

from livefeed import conf, sse
from livefeed.channels import can_read, default_channels, validate
from livefeed.exceptions import ChannelDenied, InvalidChannel, TooManyStreams
from livefeed.hub import Hub, Reader, get_hub
from livefeed.models import Event

logger = logging.getLogger("livefeed")

_MAX_CHANNELS = 32


@csrf_exempt  # GET only and changes nothing: let other methods reach the 405
@require_GET
async def stream(request: HttpRequest) -> HttpResponse:
    """Open the signed-in user's event stream, resuming after Last-Event-ID."""
    user = await request.auser()
    if not user.is_authenticated and not conf.get("ALLOW_ANONYMOUS"):
        return _error(401, "Sign in to open a livefeed stream.")
    try:
        requested = [validate(name) for name in request.GET.getlist("channel")]
        if len(requested) > _MAX_CHANNELS:
            raise InvalidChannel(f"At most {_MAX_CHANNELS} channels per stream.")
        channels = await sync_to_async(_authorized_channels)(user, requested)
        hub = get_hub()
        reader = hub.reserve(channels, user.pk if user.is_authenticated else None)
    except InvalidChannel as error:
        return _error(400, str(error))
    except ChannelDenied as error:
        return _error(403, str(error))
    except TooManyStreams as error:
        if error.per_user:
            return _error(429, str(error))
        response = _error(503, str(error))
        response["Retry-After"] = "5"
        return response
    last_id = _last_event_id(request)
    logger.debug("Stream opened: user=%s channels=%s last_id=%s", user.pk, channels, last_id)
    response = StreamingHttpResponse(_events(hub, reader, last_id), content_type="text/event-stream; charset=utf-8")
    response["Cache-Control"] = "no-cache, no-transform"
    response["X-Accel-Buffering"] = "no"
    # GZipMiddleware skips a response that already names its encoding (DESIGN §6 trap 11).
    response["Content-Encoding"] = "identity"
    return response


def _error(status: int, message: str) -> JsonResponse:
    return JsonResponse({"error": message}, status=status)


def _last_event_id(request: HttpRequest) -> int | None:
    """Return the client's resume point; anything but a sane integer counts as none."""
    value = request.headers.get("Last-Event-ID") or request.GET.get("lastEventId") or ""
    value = value.strip()
    if value.isdigit() and value.isascii() and len(value) <= 18:
        return int(value)
    return None


def _authorized_channels(user: Any, requested: list[str]) -> list[str]:
    try:
        channels = default_channels(user)
        for name in requested:
            if not can_read(user, name, channels):
                raise ChannelDenied(f"You may not read channel {name!r}.")
            if name not in channels:
                channels.append(name)
        return channels
    finally:
        # The session and user lookups opened a connection; an idle stream
        # must not hold it for its whole life (DESIGN §6 trap 10).
        _close_connections()


def _close_connections() -> None:
    for connection in connections.all(initialized_only=True):
        if not connection.in_atomic_block:
            connection.close()


async def _events(hub: Hub, reader: Reader, last_id: int | None) -> AsyncIterator[bytes]:
    # Parked on `await reader.queue.get()`, never on a yield, so a disconnect
    # cancels it there and the finally below runs (DESIGN §6 trap 3).
    try:
        # Headers leave with the first body chunk: send it before any wait (trap 2).
        yield sse.retry(conf.get("RETRY")) + sse.comment("connected")
        await hub.add(reader)  # subscribe before replaying: nothing falls between
        seen = -1
        if last_id is not None:
            chunks, seen = await sync_to_async(_replay)(reader.channels, last_id)
            if chunks:
                yield b"".join(chunks)
        while True:
            event_id, payload = await reader.queue.get()
            # Ids become visible in increasing order, so a live event at or
            # below the replayed high-water mark was already replayed.
            if event_id is None or event_id > seen:
                yield payload
            if reader.overflowed and reader.queue.empty():
                return  # the client reconnects with Last-Event-ID and replays the rest
    except asyncio.CancelledError:
        raise
    except Exception:
        # An exception escaping to daphne hangs the client and stalls daphne's
        # cleanup for the whole process (DESIGN §6 trap 4): end the stream here.
        logger.exception("livefeed stream failed; closing it")
    finally:
        await hub.remove(reader)


def _replay(channels: list[str], last_id: int) -> tuple[list[bytes], int]:
    """Return the SSE chunks after last_id (or a reset) and the highest id they cover."""
    try:
        bounds = Event.objects.aggregate(low=Min("id"), high=Max("id"))
        low, high = bounds["low"], bounds["high"] or 0
        limit = conf.get("REPLAY_LIMIT")
        rows = list(Event.objects.after(last_id, channels).values_list("id", "event", "data")[: limit + 1])
        # Every id up to `high` was visible before `rows` was read (ids become
        # visible in order), so live events up to here are duplicates.
        covered = max(high, last_id, rows[-1][0] if rows else 0)
        if low is None and last_id > 0 or (low or 0) > last_id + 1:
            reason = "expired"  # what the client missed was pruned
        elif last_id > high:
            reason = "unknown_id"  # the log was reset under the client
        elif len(rows) > limit:
            reason = "too_many"
        else:
            return [sse.encode(data, event=event, id=pk) for pk, event, data in rows], covered
        return [sse.encode(json.dumps({"reason": reason}), event="reset", id=covered)], covered
    finally:
        _close_connections()
