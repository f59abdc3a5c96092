"""Live in-app notifications and server events for Django over Server-Sent Events."""

from livefeed.api import anotify, apublish, notify, publish
from livefeed.channels import register as register_channel
from livefeed.watch import unwatch, watch

__all__ = ["anotify", "apublish", "notify", "publish", "register_channel", "unwatch", "watch"]
