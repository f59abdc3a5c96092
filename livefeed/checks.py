"""System checks (`manage.py check`) for deployments that would silently break streaming."""

import math
from typing import Any

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register

from livefeed import conf

# Common proxy idle timeouts are 60 s (nginx proxy_read_timeout, ELB).
_PROXY_TIMEOUT = 55


@register(Tags.compatibility)
def check_server(app_configs: Any = None, **kwargs: Any) -> list:
    """Streams need an ASGI server: under WSGI an async stream is buffered whole."""
    if getattr(settings, "ASGI_APPLICATION", None) or "daphne" in settings.INSTALLED_APPS:
        return []
    return [
        Warning(
            "No ASGI application is configured: under WSGI the livefeed stream is buffered "
            "and never reaches the browser.",
            hint="Add 'daphne' first in INSTALLED_APPS and set ASGI_APPLICATION, then serve with daphne.",
            id="livefeed.W001",
        )
    ]


@register(Tags.compatibility)
def check_channel_layer(app_configs: Any = None, **kwargs: Any) -> list:
    """A missing layer fails every stream; the in-memory one works in one process only."""
    layers = getattr(settings, "CHANNEL_LAYERS", None) or {}
    alias = conf.get("CHANNEL_LAYER")
    if alias not in layers:
        return [
            Error(
                f"CHANNEL_LAYERS has no {alias!r} layer: livefeed cannot deliver events.",
                hint="Set CHANNEL_LAYERS, e.g. channels_redis.pubsub.RedisPubSubChannelLayer with your Redis.",
                id="livefeed.E002",
            )
        ]
    if layers[alias].get("BACKEND", "").endswith("InMemoryChannelLayer") and not settings.DEBUG:
        return [
            Warning(
                "The in-memory channel layer delivers only within one process: events published "
                "from other processes (workers, shell, other servers) never arrive.",
                hint="Use channels_redis.pubsub.RedisPubSubChannelLayer in production.",
                id="livefeed.W003",
            )
        ]
    return []


@register(Tags.compatibility)
def check_middleware(app_configs: Any = None, **kwargs: Any) -> list:
    """Compressing middleware other than Django's own may buffer the stream (docs/design.md#trap-11)."""
    suspects = [
        path
        for path in settings.MIDDLEWARE
        if "gzip" in path.lower() or "compress" in path.lower() or "brotli" in path.lower()
    ]
    suspects = [path for path in suspects if path != "django.middleware.gzip.GZipMiddleware"]
    return [
        Warning(
            f"{path} may compress and buffer the livefeed stream.",
            hint="Make it skip responses with Content-Type text/event-stream or Content-Encoding set.",
            id="livefeed.W004",
        )
        for path in suspects
    ]


@register(Tags.compatibility)
def check_heartbeat(app_configs: Any = None, **kwargs: Any) -> list:
    """Proxies close connections idle longer than their timeout, usually 60 s."""
    heartbeat = conf.get("HEARTBEAT")
    if isinstance(heartbeat, int | float) and 0 < heartbeat <= _PROXY_TIMEOUT:
        return []
    return [
        Warning(
            f"LIVEFEED['HEARTBEAT'] is {heartbeat!r}: proxies drop streams idle for about 60 s.",
            hint=f"Use a positive number of seconds up to {_PROXY_TIMEOUT} (default 15).",
            id="livefeed.W005",
        )
    ]


# A stolen session must not outlive its victim's password reset by long.
_MAX_REAUTHORIZE = 60


@register(Tags.security)
def check_reauthorize(app_configs: Any = None, **kwargs: Any) -> list:
    """Open streams are re-authorized every REAUTHORIZE_INTERVAL s: a revoked sign-in keeps streaming till then."""
    interval = conf.get("REAUTHORIZE_INTERVAL")
    if (conf.positive("REAUTHORIZE_INTERVAL") or math.inf) <= _MAX_REAUTHORIZE:
        return []
    return [
        Warning(
            f"LIVEFEED['REAUTHORIZE_INTERVAL'] is {interval!r}: an open stream keeps streaming that long "
            "after its sign-in is revoked (sign-out elsewhere, password change, deactivation, group removal).",
            hint=f"Use a positive number of seconds up to {_MAX_REAUTHORIZE} (default 30).",
            id="livefeed.W006",
        )
    ]


_CATEGORY_FLAGS = {"in_app", "email", "required"}


@register(Tags.compatibility)
def check_categories(app_configs: Any = None, **kwargs: Any) -> list:
    """A misspelt flag in LIVEFEED['CATEGORIES'] would silently keep its default (no email, say)."""
    categories = conf.get("CATEGORIES")
    if not isinstance(categories, dict):
        return [_category_error(f"LIVEFEED['CATEGORIES'] is {categories!r:.60}, not a dict.")]
    errors = []
    for key, options in categories.items():
        if not isinstance(key, str) or not 1 <= len(key) <= 50:
            errors.append(_category_error(f"Category name {key!r:.60} is not 1-50 characters of text."))
        elif not isinstance(options, dict):
            errors.append(_category_error(f"Category {key!r} is {options!r:.60}, not a dict."))
        elif set(options) - _CATEGORY_FLAGS - {"label"}:
            unknown = ", ".join(sorted(map(str, set(options) - _CATEGORY_FLAGS - {"label"})))
            errors.append(_category_error(f"Category {key!r} has unknown option(s) {unknown}."))
        elif any(not isinstance(options[flag], bool) for flag in _CATEGORY_FLAGS & set(options)):
            errors.append(_category_error(f"Category {key!r}: in_app, email and required must be True or False."))
    return errors


def _category_error(message: str) -> Error:
    return Error(
        message,
        hint='Use {"billing": {"label": "Billing", "in_app": True, "email": True, "required": False}, ...}.',
        id="livefeed.E007",
    )
