"""Live in-app notifications and server events for Django over Server-Sent Events."""

from livefeed.channels import register as register_channel
from livefeed.notifications import anotify, notify
from livefeed.publishing import apublish, publish
from livefeed.watch import unwatch, watch

__all__ = ["anotify", "apublish", "notify", "publish", "register_channel", "unwatch", "watch"]
