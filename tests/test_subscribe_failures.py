"""A subscribe that fails or is cancelled halfway leaves no reader and no group membership behind."""

import asyncio

import pytest
from channels.layers import InMemoryChannelLayer
from django.contrib.auth.models import User

from livefeed import hub
from tests.streams import Stream, run, session_for

pytestmark = pytest.mark.django_db(transaction=True)

TROUBLE = "livefeed.job-1"  # the group whose group_add goes wrong


class BrokenLayer(InMemoryChannelLayer):
    """Joins every group but TROUBLE's; there it records the member (as the Redis pub/sub layer
    does before its SUBSCRIBE), then raises like a Redis that is down, or hangs like one that
    does not answer."""

    how = "raises"
    entered: asyncio.Event | None = None

    async def group_add(self, group: str, channel: str) -> None:
        await super().group_add(group, channel)
        if group != TROUBLE:
            return
        if self.how == "raises":
            raise ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")
        self.entered.set()
        await asyncio.Event().wait()  # until the client goes away


def may_read_jobs(user, channel):
    return channel.startswith("job-")


def _state(current: hub.Hub) -> dict:
    return {
        "readers": {channel: len(readers) for channel, readers in current.readers.items()},
        "groups": {g for g, members in current.layer.groups.items() if current.channel_name in members},
    }


@pytest.mark.parametrize("how", ["raises", "hangs until the client goes away"])
def test_a_half_finished_subscribe_leaves_no_reader_or_group_behind(settings, how):
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": f"{__name__}.BrokenLayer"}}
    settings.LIVEFEED = {"AUTHORIZE": f"{__name__}.may_read_jobs"}
    BrokenLayer.how = how
    user = User.objects.create_user("alice", password="x")
    key = session_for(user)

    async def scenario():
        BrokenLayer.entered = asyncio.Event()
        first = await (await Stream(session_key=key).open()).connected()
        current = hub.get_hub()
        before = _state(current)
        for _ in range(3):  # every reconnect of an outage must not leak one more
            # Its user and broadcast channels are joined already: only job-1 needs the layer.
            second = await Stream("/livefeed/stream/?channel=job-1", session_key=key).open()
            if how == "raises":
                await second.finish()  # the server ends it; the browser retries later
            else:
                await BrokenLayer.entered.wait()
                BrokenLayer.entered.clear()
                await second.close()
        during = _state(current)
        await first.close()
        return before, during, _state(current)

    before, during, after = run(scenario)
    assert during == before
    assert after == {"readers": {}, "groups": set()}
