"""The event log's newest rows, in memory: a reconnect storm's replays share their reads.

After a deploy or a network blip thousands of streams reconnect at once, each
asking "what came after my Last-Event-ID on my channels?". Asked of the
database one stream at a time, the storm queues on the log. Instead each
process keeps a window of the log's newest rows, every channel's (Centrifugo
keeps recent history per channel the same way), and answers every replay from
it, filtered by the stream's channels.

The window must hold every row up to the newest one a stream could have missed:
a row committed before the stream subscribed and sent live before that never
reaches it live (docs/reliability.md#out-of-order-delivery). So every replay
waits for a read of the log that *started after it subscribed*; all the
replays waiting for one read share it (single flight): a storm of N reconnects
costs a few reads, not N. A read fetches only what is newer than the window
(ids become visible in order, docs/reliability.md), or, for a stream further
behind than the window, the log after that stream's id. Past CAPACITY rows the
oldest leave; a stream behind them replays from the database as before
(livefeed.eventlog), with the same answers: its rows, or one reset.
"""

import asyncio
import bisect
import contextvars
import json
import weakref

from livefeed import conf, eventlog, instruments, sse
from livefeed.language import MARK

# Rows kept per process: every channel's newest events. A replay of up to
# REPLAY_LIMIT of one stream's events behind it needs at most this many.
CAPACITY = 5000
# And at most about this many bytes of them: payloads may be up to MAX_PAYLOAD each.
MAX_BYTES = 16 * 1024 * 1024
# Seconds from the start of one read to the next. Under a storm the connects
# arrive a few at a time, and a read each time they do cost more CPU than the
# replays (docs/performance.md#storm-reads-spaced); a lone reconnect after a
# quiet spell still reads at once.
READ_SPACING = 0.01

Row = tuple[int, str, str, str, bytes]  # id, channel, event, data, the SSE bytes of a JSON stream


def _read(after: int, capacity: int) -> tuple[list[tuple[int, str, str, str]], int, int | None, bool]:
    """Return the log's rows after `after` (at most capacity), its newest and oldest ids,
    and whether those were all of them."""
    from livefeed.models import Event

    rows, high, low = Event.objects.window(after, capacity + 1)
    return rows[:capacity], high, low, len(rows) <= capacity


# Off the stream thread: the storm's connects queue on it.
_read_in_thread = eventlog.in_thread(_read, thread_sensitive=False)


class History:
    def __init__(self, capacity: int | None = None) -> None:
        self.capacity = capacity or CAPACITY
        # Every log row with start < id <= end is in rows (start None: nothing read yet).
        self.start: int | None = None
        self.end = 0
        self.low: int | None = None  # the log's oldest id at the last read
        self.rows: list[Row] = []
        self.ids: list[int] = []
        self.size = 0  # bytes of data and SSE bytes held
        self.reads = 0
        self.waiting = 0  # replays waiting for a read
        self._lock = asyncio.Lock()  # one read at a time
        self._next: asyncio.Future | None = None  # the read not started yet: whoever waits now is covered by it
        self._wanted = 0  # the lowest Last-Event-ID waiting for _next
        self._last_read = float("-inf")  # when the last read started (loop time)

    async def replay(
        self, channels: list[str], last_id: int, html: bool = False, language: str | None = None
    ) -> tuple[list[bytes], int]:
        """Return the SSE chunks after last_id on channels (or one reset) and the highest id they cover.

        Call it once the stream is subscribed: what it misses here arrives live.
        """
        self.waiting += 1
        try:
            await asyncio.shield(self._join(last_id))
        finally:
            self.waiting -= 1
        if self.start is None or last_id < self.start:
            return await eventlog.replay(channels, last_id, html, language)  # behind the window: the database answers
        return self._answer(set(channels), last_id, html, language)

    def _join(self, last_id: int) -> asyncio.Future:
        if self._next is None:
            self._next = asyncio.get_running_loop().create_future()
            self._wanted = last_id
            # A clean context: the read outlives the stream that starts it.
            asyncio.create_task(self._read(self._next), context=contextvars.Context())
        else:
            self._wanted = min(self._wanted, last_id)
        return self._next

    async def _read(self, done: asyncio.Future) -> None:
        async with self._lock:
            loop = asyncio.get_running_loop()
            pause = self._last_read + READ_SPACING - loop.time()
            if pause > 0:  # streams that subscribe meanwhile join this read
                await asyncio.sleep(pause)
            # From here on, a stream that subscribes waits for the next read.
            self._next, wanted = None, self._wanted
            self._last_read = loop.time()
            try:
                self.reads += 1
                if self.start is None or wanted < self.start:
                    self._replace(await _read_in_thread(wanted, self.capacity), wanted)
                else:
                    self._extend(await _read_in_thread(self.end, self.capacity))
            except asyncio.CancelledError:
                done.cancel()
                raise
            except Exception as error:
                # Each waiting stream fails as its own read would have (livefeed.views ends it).
                done.set_exception(error)
                done.exception()  # retrieved: its streams may all have gone meanwhile
                return
            done.set_result(None)

    def _replace(self, read: tuple[list[tuple[int, str, str, str]], int, int | None, bool], after: int) -> None:
        rows, high, low, complete = read
        if not complete:
            return  # more than the window holds: those streams replay from the database
        self.start, self.rows, self.ids, self.size = min(after, high), [], [], 0
        self.end = self.start
        self._extend(read)

    def _extend(self, read: tuple[list[tuple[int, str, str, str]], int, int | None, bool]) -> None:
        rows, high, low, complete = read
        if not complete:
            self.start = None  # a gap above the window: start again from the next stream's id
            return
        for pk, channel, event, data in rows:
            encoded = sse.encode(data, event=event, id=pk)
            self.rows.append((pk, channel, event, data, encoded))
            self.ids.append(pk)
            self.size += len(data) + len(encoded)
        self.end = max(self.end, high, self.ids[-1] if self.ids else 0)
        self.low = low
        drop = 0
        while len(self.rows) - drop > self.capacity or (self.size > MAX_BYTES and drop < len(self.rows)):
            _, _, _, data, encoded = self.rows[drop]
            self.size -= len(data) + len(encoded)
            drop += 1
        if drop:
            self.start = self.ids[drop - 1]  # a stream behind this replays from the database
            del self.rows[:drop], self.ids[:drop]

    def _answer(self, channels: set[str], last_id: int, html: bool, language: str | None) -> tuple[list[bytes], int]:
        high = self.end
        limit = conf.get("REPLAY_LIMIT")
        if last_id > high:
            reason = "unknown_id"  # the log was reset under the client (a restored database)
        elif last_id > 0 and (self.low is None or self.low > last_id + 1):
            reason = "expired"  # what the client missed was pruned
        else:
            found = [row for row in self.rows[bisect.bisect_right(self.ids, last_id) :] if row[1] in channels]
            if len(found) <= limit:
                return [self._encoded(row, html, language) for row in found], high
            reason = "too_many"
        instruments.resets.inc()
        return [sse.encode(json.dumps({"reason": reason}), event="reset", id=high)], high

    @staticmethod
    def _encoded(row: Row, html: bool, language: str | None) -> bytes:
        pk, _, event, data, encoded = row
        if html or data.startswith(MARK):  # rendered per reader, as the hub does live
            return eventlog.encode(event, data, pk, html, language)
        return encoded


async def replay(
    channels: list[str], last_id: int, html: bool = False, language: str | None = None
) -> tuple[list[bytes], int]:
    """Return the SSE chunks after last_id on channels (or one reset) and the highest id they cover."""
    return await get_history().replay(channels, last_id, html, language)


_histories: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, History]" = weakref.WeakKeyDictionary()


def get_history() -> History:
    """Return the history of the running event loop, creating it on first use."""
    loop = asyncio.get_running_loop()
    history = _histories.get(loop)
    if history is None:
        history = _histories[loop] = History()
    return history
