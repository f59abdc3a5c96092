"""GET /livefeed/health/: can this process serve streams? For load balancers and probes.

Each part is checked against a deadline of HEALTH_TIMEOUT seconds, so a hung
Redis or database answers 503 at once instead of after the client library's
own timeouts, which would leave the balancer's probe to time out instead.
The answer names no host, no setting and no error text: anyone may ask.
"""

import asyncio
import logging
from typing import Any

from channels.layers import get_channel_layer
from django.db import transaction
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET

from livefeed import conf, eventlog, hub

logger = logging.getLogger("livefeed")

# A group no channel maps to (theirs are "livefeed.<name>"): a group_send to it
# is one round trip to the layer's server and leaves nothing behind on any
# layer (no member, no stored message).
_PROBE_GROUP = "livefeed-health"


# Django refuses ATOMIC_REQUESTS for async views unless they opt out; this one writes nothing.
@transaction.non_atomic_requests
@csrf_exempt  # GET only and changes nothing
@require_GET
@never_cache
async def health(request: HttpRequest) -> JsonResponse:
    """Answer 200 when the channel layer and the event log both work, else 503 naming the part down."""
    timeout = conf.get("HEALTH_TIMEOUT")
    layer, log = await asyncio.gather(_check("layer", _layer(), timeout), _check("log", _log(), timeout))
    body = {"layer": layer, "log": log, "streams": hub.open_streams()}
    return JsonResponse(body, status=200 if layer == log == "ok" else 503)


async def _check(part: str, probe: Any, timeout: float) -> str:
    try:
        async with asyncio.timeout(timeout):
            await probe
    except Exception:
        logger.warning("Health check: the %s is down", part, exc_info=True)
        return "down"
    return "ok"


async def _layer() -> None:
    await get_channel_layer(conf.get("CHANNEL_LAYER")).group_send(_PROBE_GROUP, {"type": "livefeed.health"})


def _read_log() -> None:
    from livefeed.models import Event

    Event.objects.order_by().values_list("id").first()


# Off the request threads: a hung database must not hold one past the deadline.
_log = eventlog.in_thread(_read_log, thread_sensitive=False)
