"""The demo's ASGI application plus GET /__probe__/hub: what the hub of this daphne holds, for tests."""

import asyncio
import json

from livefeed import hub
from project.asgi import application as django_application

PATH = "/__probe__/hub"


async def application(scope: dict, receive, send) -> None:
    if scope["type"] == "http" and scope["path"] == PATH:
        body = json.dumps(_state()).encode()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body})
        return
    await django_application(scope, receive, send)


def _state() -> dict:
    current = hub._hubs.get(asyncio.get_running_loop())
    if current is None:
        return {"streams": 0, "readers": {}, "groups": []}
    # The Redis pub/sub layer: group channel name -> local member channels.
    groups = getattr(current.layer, "groups", {})
    return {
        "streams": len(current.streams),
        "readers": {channel: len(readers) for channel, readers in current.readers.items()},
        "groups": sorted(name for name, members in groups.items() if current.channel_name in members),
    }
