"""Prometheus metrics of this process, for `path("metrics/", livefeed.metrics.view)`.

Needs prometheus_client (`pip install "django-livefeed[metrics]"`). Importing
this module swaps livefeed.instruments' no-ops for the metrics below, so a site
pays for counting only when it exposes the counts. Each process counts its own
streams and deliveries: scrape every process, as with any multi-process server.
"""

from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse

try:
    import prometheus_client
except ImportError as error:
    raise ImproperlyConfigured(
        'livefeed.metrics needs prometheus_client: pip install "django-livefeed[metrics]", '
        "or take livefeed.metrics out of your URLconf."
    ) from error

from livefeed import hub, instruments

__all__ = ["view"]

_Counter = prometheus_client.Counter

streams = prometheus_client.Gauge("livefeed_streams_open", "Streams open on this process.")
streams.set_function(hub.open_streams)

instruments.connects = _Counter("livefeed_connects", "Streams opened (200 answers).")
instruments.refusals = _Counter(
    "livefeed_refusals", "Stream requests answered with an error, by status (400, 401, 403, 429, 503).", ["status"]
)
instruments.published = _Counter(
    "livefeed_events_published", "Events this process sent on the channel layer (publish, apublish, notify)."
)
instruments.delivered = _Counter(
    "livefeed_events_delivered", "Events queued to this process's streams: one per event and stream."
)
instruments.replays = _Counter("livefeed_replays", "Streams that resumed with a Last-Event-ID.")
instruments.resets = _Counter("livefeed_resets", "Replays answered with a reset event instead of the events.")
instruments.recovered = _Counter(
    "livefeed_events_recovered", "Events the channel layer lost that the hub delivered from the event log."
)
instruments.slow_closes = _Counter(
    "livefeed_slow_stream_closes", "Streams closed because their client read too slowly."
)
instruments.publish_seconds = prometheus_client.Histogram(
    "livefeed_publish_seconds",
    "Time the channel layer send of published events takes (in the background, after the commit).",
)


async def view(request: HttpRequest) -> HttpResponse:
    """Return every metric of the default registry in Prometheus' text format."""
    # Async, so the streams gauge reads the hubs on their own event loop's thread.
    return HttpResponse(prometheus_client.generate_latest(), content_type=prometheus_client.CONTENT_TYPE_LATEST)
