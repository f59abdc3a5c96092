"""Errors of livefeed; each subclasses the Django error that gives it its HTTP status."""

from django.core.exceptions import BadRequest, PermissionDenied


class InvalidChannel(BadRequest, ValueError):
    """A channel name Channels cannot use as a group name."""


class ChannelDenied(PermissionDenied):
    """The user may not read this channel."""


class TooManyStreams(Exception):
    """A stream cap was reached; `per_user` tells which one (429 or 503)."""

    def __init__(self, message: str, *, per_user: bool) -> None:
        super().__init__(message)
        self.per_user = per_user
