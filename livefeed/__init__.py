"""Live in-app notifications and server events for Django over Server-Sent Events."""

from livefeed.api import anotify, apublish, notify, publish

__all__ = ["anotify", "apublish", "notify", "publish"]
