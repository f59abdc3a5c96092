"""The LIVEFEED settings dict with its defaults, read in one place.

Read when called, never at import, so `override_settings(LIVEFEED=...)` works
in tests without any cache to reset.
"""

from typing import Any

from django.conf import settings

DEFAULTS: dict[str, Any] = {
    # Seconds between ": keep-alive" comments; under common proxy timeouts (60 s).
    "HEARTBEAT": 15.0,
    # Milliseconds the browser waits before reconnecting (the SSE "retry" field).
    "RETRY": 3000,
    # Seconds of event log kept for Last-Event-ID replay (livefeed_prune).
    "REPLAY_RETENTION": 24 * 3600,
    # Most events replayed on one reconnect; past it the client gets "reset".
    "REPLAY_LIMIT": 1000,
    # Open streams in this process: of one user (429 past it), and of all users (503).
    "MAX_STREAMS_PER_USER": 10,
    "MAX_STREAMS": 10_000,
    # Open anonymous streams (ALLOW_ANONYMOUS) from one client address in this
    # process (429 past it): without it one client could take every slot.
    "MAX_ANONYMOUS_STREAMS_PER_ADDRESS": 10,
    # Live events buffered for one slow stream before it is closed to catch up.
    "QUEUE_SIZE": 256,
    # Bytes a stream may write under daphne while its client reads none of them
    # before it is closed to catch up: daphne never makes a stream wait for its
    # client, so QUEUE_SIZE alone would let a stuck client hold every event.
    "MAX_UNSENT": 256 * 1024,
    # Largest JSON payload of one event, in bytes (publish raises ValueError).
    "MAX_PAYLOAD": 64 * 1024,
    # Dotted path to `(user, channel) -> bool` deciding custom channels.
    "AUTHORIZE": None,
    # Let anonymous users open a stream (broadcast and authorized custom channels).
    "ALLOW_ANONYMOUS": False,
    # Seconds between the hub's sweeps of the event log for events the channel
    # layer lost (Redis restarts); such an event arrives this much late.
    "RECOVERY_INTERVAL": 2.0,
    # Seconds a channel layer send may take in the background before it is
    # given up (a stored event then arrives by the log sweep); also how long an
    # exiting shell or worker waits for its last sends.
    "SEND_TIMEOUT": 5.0,
    # Seconds a process's mover lets events gather before it moves them into the
    # event log, when publishers contend for the log's lock (livefeed.mover): what
    # such a publish may add to its event's latency, for fewer, larger moves.
    "MOVE_GATHER": 0.05,
    # Seconds between each process's runs of the due job (livefeed.due): snoozed
    # notifications coming back, expired ones leaving open inboxes. At most 60
    # keeps the promise "within a minute"; None leaves it to `livefeed_due` in cron.
    "DUE_INTERVAL": 30.0,
    # Seconds a live event waits for a lower id that the event log lacks (a
    # rolled-back publish leaves such a hole) before the hub passes over it;
    # an id the log has is read from it at once (livefeed.sequencer).
    "REORDER_TIMEOUT": 0.5,
    # Seconds after which a stream ends so the client reconnects and is
    # authenticated again (None: never). Checked on each heartbeat.
    "MAX_AGE": None,
    # Seconds a stream ticket (livefeed.tickets) lets its session's browser
    # reconnect without the database; None or 0: every connect asks the session.
    # A change heard by a process, or found by its sweep, voids older tickets
    # there at once; this bounds the rest (docs/reliability.md#stream-tickets).
    "TICKET_LIFETIME": 3600,
    # Seconds between each process's checks that the sign-in of every open
    # stream still holds (session alive, password unchanged, user active, still
    # in its groups); a revoked one ends. At most 60: a stolen session must not
    # outlive its victim's password reset by long.
    "REAUTHORIZE_INTERVAL": 30.0,
    # On SIGTERM, streams end with a retry delay of RETRY plus up to this many
    # ms, spreading reconnections; the server stops SHUTDOWN_GRACE s later.
    "SHUTDOWN_SPREAD": 10_000,
    "SHUTDOWN_GRACE": 0.5,
    # Seconds /livefeed/health/ waits for the channel layer and for the event
    # log before calling that part down: a hung Redis must fail the probe
    # quickly, not after the client library's own timeouts.
    "HEALTH_TIMEOUT": 1.0,
    # Categories of notifications with their defaults per reader, e.g.
    # {"billing": {"label": "Billing", "in_app": True, "email": True, "required": False}};
    # "general" (in-app, no email) always exists (livefeed.categories).
    "CATEGORIES": {},
    # Seconds a notification stays unread after its last update before it is
    # emailed (livefeed_deliver): long enough for someone on the page to see it.
    "EMAIL_DELAY": 600,
    # The site's address for links in emails ("https://example.com"): a job
    # run from cron has no request to take it from.
    "SITE_URL": "http://localhost:8000",
    # `(user) -> URL` (or its dotted path): the picture the widget shows next to
    # an actor's name; None: their initials. Called for each event it is in.
    "AVATAR": None,
    # The channel layer alias from CHANNEL_LAYERS.
    "CHANNEL_LAYER": "default",
    # Allocations between young garbage collections, set by livefeed.asgi's
    # get_asgi_application (Python's default: 700; None leaves it alone).
    # Thousands of open streams keep many objects alive; at 700 the collector
    # keeps promoting in-flight ones and walks them all in full collections.
    "GC_THRESHOLD": 10_000,
}


def get(name: str) -> Any:
    """Return one livefeed setting, the user's value over the default."""
    if name not in DEFAULTS:
        raise KeyError(f"Unknown livefeed setting {name!r}; known: {', '.join(DEFAULTS)}")
    return getattr(settings, "LIVEFEED", {}).get(name, DEFAULTS[name])


def positive(name: str) -> float | None:
    """Return a setting of seconds as a float if it is a positive number, else None (off, or not a number)."""
    value = get(name)
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return float(value)
    return None
