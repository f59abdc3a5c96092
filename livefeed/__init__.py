"""Live in-app notifications and server events for Django over Server-Sent Events."""

from livefeed.api import apublish, publish

__all__ = ["apublish", "publish"]
