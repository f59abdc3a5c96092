"""Live events released in log-id order, once per process (docs/reliability.md#out-of-order-delivery).

Publishers commit ids in order but send on the channel layer after, so id N+1
can reach a process before N, and a layer can lose N outright. A stream that
wrote N+1 first would resume after it and never get N: the replay starts after
N+1 and the late live copy of N is a duplicate by id. So the hub hands live
events to a Sequencer, which releases them in id order (once per message, not
per stream): an event that overtook a lower id waits until that id is filled,
live or from the log.

The log holds the events of every channel, and a process hears only its own
channels: most gaps are other channels' ids. One range read of the log settles
a gap: ids of channels read here are fetched, other channels' ids are passed
over, and an id the log lacks (a rolled-back publish leaves a hole in a
PostgreSQL sequence) is passed over once it has been missing REORDER_TIMEOUT s.
"""

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from livefeed import conf, eventlog

logger = logging.getLogger("livefeed")

Message = dict[str, Any]


class Sequencer:
    def __init__(self, release: Callable[[Message], None], reads: Callable[[str], bool]) -> None:
        self.release = release  # fans one event out to this process's streams
        self.reads = reads  # whether a channel has readers in this process
        # Every id up to `floor` was released or passed over; `held` are the
        # live events above it that wait for a lower id.
        self.floor = 0
        self.held: dict[int, Message] = {}
        self.gap = asyncio.Event()
        self._waiting = (0, 0.0)  # the id after the floor, and since when it is awaited

    def push(self, message: Message) -> None:
        """Release a live event if it is next, else hold it; drop a copy of one released already."""
        event_id = message["id"]
        if event_id <= self.floor or event_id in self.held:
            return  # its copy came from the log first
        self.held[event_id] = message
        self._drain()
        if self.held:
            self.gap.set()

    def _drain(self) -> None:
        while self.floor + 1 in self.held:
            self.floor += 1
            self.release(self.held.pop(self.floor))

    async def run(self) -> None:
        """Fill the gaps under held events from the log, for as long as the hub runs."""
        loop = asyncio.get_running_loop()
        while True:
            timeout = max(0.0, self._waiting[1] + conf.get("REORDER_TIMEOUT") - loop.time()) if self.held else None
            try:
                async with asyncio.timeout(timeout):
                    await self.gap.wait()  # a new event held, or the wait ran out
            except TimeoutError:
                pass
            self.gap.clear()
            if not self.held:
                continue
            self._await_next()
            try:
                fetched = await self.fill(max(self.held))
                if fetched:
                    logger.debug("Read %d event(s) from the log to keep live events in order", fetched)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("Could not read the event log to order live events")
                if self._overdue():  # live delivery must not stall on the log: release what is held
                    self._advance({}, {}, max(self.held), passes=len(self.held))
            self._await_next()

    def _await_next(self) -> None:
        if self._waiting[0] != self.floor + 1:
            self._waiting = (self.floor + 1, asyncio.get_running_loop().time())

    def _overdue(self) -> bool:
        waited = asyncio.get_running_loop().time() - self._waiting[1]
        return self._waiting[0] == self.floor + 1 and waited >= conf.get("REORDER_TIMEOUT")

    async def fill(self, top: int, settled: bool = False) -> int:
        """Release every id up to top, reading from the log those held nowhere; return how many were read.

        settled: every id up to top had its time to commit (the recovery
        sweep), so one the log lacks is passed over at once.
        """
        found, oldest = await eventlog.ids_after(self.floor, top)
        rows = dict(found)
        if len(rows) == eventlog.BATCH:  # more than one read: settle this part now, the rest next
            top = max(rows)
            self.gap.set()
        wanted = [pk for pk, channel in rows.items() if pk > self.floor and pk not in self.held and self.reads(channel)]
        fetched = {message["id"]: message for message in await eventlog.messages(wanted)} if wanted else {}
        # No await from here on: pushes meanwhile moved the floor or held more.
        passes = len(rows) + 1 if settled else int(self._overdue())
        self._advance(rows, fetched, top, passes, oldest)
        return len(fetched)

    def _advance(
        self, rows: dict[int, str], fetched: dict[int, Message], top: int, passes: int, oldest: int = 0
    ) -> None:
        """Release in id order up to top, over ids below oldest and at most `passes` runs of ids found nowhere."""
        for pk in sorted(rows.keys() | self.held.keys()):
            if pk > top:
                break
            if pk <= self.floor:
                continue
            if self.floor + 1 < pk and oldest < pk:  # the ids in between are in no message and not in the log
                if not passes:
                    break
                passes -= 1
            self.floor = pk
            message = self.held.pop(pk, None) or fetched.get(pk)
            if message is not None:  # else another channel's event, or one pruned meanwhile
                self.release(message)
        self._drain()
