"""A load-generating process: holds many SSE streams on raw asyncio sockets.

Driven by bench.run over stdin/stdout, one JSON line per command:
  {"cmd": "connect", "resume": false, "concurrency": 1000, "timeout": 30}
  {"cmd": "expect", "seqs": [0, 1], "own": false}   (before the events are sent)
  {"cmd": "collect", "timeout": 30}                  (wait for them, report)
  {"cmd": "reconnect", "on": true}                   (a stream the server ends comes back, with Last-Event-ID)
  {"cmd": "close"} / {"cmd": "stats"} / {"cmd": "exit"}
The first line is the setup: {"port", "path", "cookie", "heartbeat_event", "sessions": [[key, index], ...]}.
Each event's data carries {"seq", "t"} with t on time.monotonic(), a clock
shared by every process of the machine, so latency needs no clock sync.
"""

import asyncio
import functools
import json
import os
import random
import resource
import sys
import time


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _value(line: bytes, colon: int) -> bytes:
    """A field's value: after its colon, less the one space that may follow it (the SSE spec)."""
    value = line[colon + 1 :]
    return value[1:] if value.startswith(b" ") else value


def _same(stream: "Stream") -> "Stream":
    return stream


class Stream(asyncio.Protocol):
    """One SSE response over HTTP/1.1 chunked encoding, parsed as it arrives."""

    def __init__(self, bench: "Client", index: int, request: bytes) -> None:
        self.bench, self.index, self.request = bench, index, request
        self.opened: asyncio.Future = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None
        self.head = b""
        self.body = bytearray()
        self.text = b""
        self.data: bytes | None = None
        self.event = b"message"
        self.status = 0
        self.last_id = ""
        self.seen: dict[int, int] = {}  # seq -> times received since the last collect
        self.done_at: float | None = None
        self.got = 0  # wanted seqs seen at least once: a count, since want can hold thousands
        self.joined = False  # once opened: its events count as expected, whether or not it is open now
        self.want: set[int] = {index} if bench.own else set(bench.seqs)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        transport.write(self.request)  # type: ignore[attr-defined]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.opened.done():
            self.opened.set_exception(ConnectionError(f"closed before headers: {exc}"))
        if self in self.bench.open and self.bench.reconnecting:
            self.bench.resume(self)
        self.bench.open.discard(self)

    def carry_over(self, old: "Stream") -> None:
        """Go on where old stopped: what it saw and waited for, and its Last-Event-ID."""
        self.last_id, self.seen, self.want, self.done_at = old.last_id, old.seen, old.want, old.done_at
        self.got = old.got
        self.joined = old.joined

    def data_received(self, data: bytes) -> None:
        if not self.status:
            self.head += data
            end = self.head.find(b"\r\n\r\n")
            if end < 0:
                return
            self.status = int(self.head[9:12])
            self.bench.keep_cookies(self.index, self.head[:end])
            data, self.head = self.head[end + 4 :], b""
            if not self.opened.done():
                self.opened.set_result(self.status)
            self.joined = self.joined or self.status == 200
            if self.status != 200:  # an error page (a proxy's 502 has no chunked body): not a stream
                if self.transport:
                    self.transport.close()
                return
        self.body += data
        self._dechunk()

    def _dechunk(self) -> None:
        body, pos = self.body, 0
        while True:
            eol = body.find(b"\r\n", pos)
            if eol < 0:
                break
            size = int(body[pos:eol], 16)
            if size == 0:
                if self.transport:
                    self.transport.close()
                break
            end = eol + 2 + size
            if len(body) < end + 2:
                break
            self._sse(bytes(body[eol + 2 : end]))
            pos = end + 2
        del body[:pos]

    def _sse(self, chunk: bytes) -> None:
        # Line by line, as the SSE spec reads: a comment (": keep-alive") is a
        # line of its own, not always followed by a blank line.
        if b"\r" in chunk:  # sse-starlette ends lines with CRLF
            chunk = chunk.replace(b"\r\n", b"\n")
        lines = (self.text + chunk).split(b"\n")
        self.text = lines.pop()
        now = time.monotonic()
        for line in lines:
            if not line:
                self._dispatch(now)
            elif line.startswith(b":"):
                self.bench.heartbeats += b"connected" not in line  # keep-alive or ping
            elif line.startswith(b"data:"):  # "data:" alone is empty data (django-eventstream)
                self.data = _value(line, 5)
            elif line.startswith(b"id:"):
                self.last_id = _value(line, 3).decode()
            elif line.startswith(b"event:"):
                self.event = _value(line, 6)

    def _dispatch(self, now: float) -> None:
        data, event, self.data, self.event = self.data, self.event, None, b"message"
        if data is None:
            return
        if event == self.bench.heartbeat_event:
            self.bench.heartbeats += 1
            return
        payload = None
        if event == b"bench":
            payload = json.loads(data)
        elif event == b"notification":
            payload = json.loads(data).get("data")  # notify(data=...): the scenario's seq and t
        if not payload or "seq" not in payload:
            name = event.decode()
            self.bench.other_events[name] = self.bench.other_events.get(name, 0) + 1
            return
        self._deliver(payload["seq"], now - payload["t"])

    def _deliver(self, seq: int, latency: float) -> None:
        count = self.seen.get(seq, 0)
        self.seen[seq] = count + 1
        if count:
            self.bench.duplicates += 1
            return
        if seq not in self.want:
            self.bench.unexpected += 1
            return
        self.bench.latencies.append(round(latency * 1000, 3))
        self.got += 1
        if self.done_at is None and self.got == len(self.want):
            self.done_at = time.monotonic()
            self.bench.completed += 1


class Client:
    def __init__(self, setup: dict) -> None:
        self.port, self.path, self.cookie = setup["port"], setup["path"], setup["cookie"]
        self.heartbeat_event = setup.get("heartbeat_event", "").encode() or None  # an event counted as one
        self.sessions = setup["sessions"]
        self.streams: list[Stream] = []
        self.open: set[Stream] = set()
        self.latencies: list[float] = []
        self.other_events: dict[str, int] = {}
        self.heartbeats = self.duplicates = self.unexpected = self.completed = 0
        self.seqs: list[int] = []
        self.own = False
        self.reconnecting = False
        self.reconnects = 0
        self.keys = {index: key for key, index in self.sessions}
        # Cookies the server set, per stream, sent back on its reconnects as a browser would
        # (livefeed's stream ticket); the session cookie stays the bench's.
        self.jar: dict[int, dict[str, str]] = {}
        self.since = time.monotonic()
        self.cpu = _cpu()

    def keep_cookies(self, index: int, head: bytes) -> None:
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.decode("latin-1").partition(":")
            if name.strip().lower() != "set-cookie":
                continue
            pair, _, attributes = value.strip().partition(";")
            cookie, _, content = pair.partition("=")
            jar = self.jar.setdefault(index, {})
            if "max-age=0" in attributes.lower().replace(" ", "") or not content:
                jar.pop(cookie, None)
            else:
                jar[cookie] = content

    def _request(self, key: str, last_id: str, index: int) -> bytes:
        cookies = "".join(f"; {name}={value}" for name, value in self.jar.get(index, {}).items())
        lines = [
            f"GET {self.path} HTTP/1.1",
            f"Host: 127.0.0.1:{self.port}",
            "Accept: text/event-stream",
            f"Cookie: {self.cookie}={key}{cookies}",
        ]
        if last_id:
            lines.append(f"Last-Event-ID: {last_id}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode()

    async def connect(self, resume: bool, concurrency: int, timeout: float) -> dict:
        loop = asyncio.get_running_loop()
        old = {s.index: s.last_id for s in self.streams}
        gate = asyncio.Semaphore(concurrency)
        statuses: dict[str, int] = {}
        first_bytes: list[float] = []  # ms from connect to the status line, per opened stream
        self.streams = []

        async def one(key: str, index: int) -> None:
            stream = Stream(self, index, self._request(key, old.get(index, "") if resume else "", index))
            self.streams.append(stream)
            async with gate:
                started = time.monotonic()
                try:
                    async with asyncio.timeout(timeout):
                        await loop.create_connection(lambda: stream, "127.0.0.1", self.port)
                        status = await stream.opened
                        first_bytes.append(round((time.monotonic() - started) * 1000, 1))
                except (OSError, TimeoutError) as error:
                    status = type(error).__name__
                    if stream.transport:
                        stream.transport.abort()
                statuses[str(status)] = statuses.get(str(status), 0) + 1
                if status == 200:
                    self.open.add(stream)
                elif stream.transport:
                    stream.transport.close()

        cpu, start = _cpu(), time.monotonic()
        await asyncio.gather(*(one(key, index) for key, index in self.sessions))
        first_bytes.sort()
        count = len(first_bytes)
        pick = [first_bytes[min(count - 1, int(q * count))] for q in (0.1, 0.5, 0.9) if count]
        return {
            "statuses": statuses,
            "seconds": time.monotonic() - start,
            "cpu": _cpu() - cpu,
            "first_byte_ms": dict(zip(("p10", "p50", "p90"), pick, strict=True)) if first_bytes else {},
        }

    def reconnect(self, on: bool) -> dict:
        """From now on, a stream that the server (or a proxy) ends reconnects as a browser would."""
        self.reconnecting = on
        return {"ok": True}

    def resume(self, old: Stream) -> None:
        self.reconnects += 1
        asyncio.get_running_loop().create_task(self._reopen(self._fresh(old)))

    async def _reopen(self, stream: Stream) -> None:
        # Spread over a second, as the retry: field of a closing server spreads browsers.
        await asyncio.sleep(random.random())
        for _ in range(20):
            try:
                await asyncio.get_running_loop().create_connection(
                    functools.partial(_same, stream), "127.0.0.1", self.port
                )
                if await stream.opened == 200:
                    self.open.add(stream)
                    return
            except OSError:
                pass
            await asyncio.sleep(1)
            stream = self._fresh(stream)

    def _fresh(self, old: Stream) -> Stream:
        """Return a new Stream in old's place, resuming after its Last-Event-ID."""
        stream = Stream(self, old.index, self._request(self.keys[old.index], old.last_id, old.index))
        stream.carry_over(old)
        self.streams[self.streams.index(old)] = stream
        return stream

    def expect(self, seqs: list[int], own: bool) -> dict:
        """Start a phase: each stream wants these seqs (or its own index)."""
        self.seqs, self.own = seqs, own
        self.since, self.cpu = time.monotonic(), _cpu()
        self.completed = 0
        for stream in self.streams:
            stream.want = {stream.index} if own else set(seqs)
            stream.seen, stream.done_at, stream.got = {}, None, 0
        self.latencies, self.duplicates, self.unexpected = [], 0, 0
        return {"ok": True}

    async def collect(self, timeout: float) -> dict:
        """Wait until every open stream has its expected events, or timeout."""
        deadline = time.monotonic() + timeout
        while self.completed < sum(stream.joined for stream in self.streams) and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        return self._report(self.since, self.cpu)

    def _report(self, start: float, cpu: float) -> dict:
        expected = delivered = 0
        done_times = []
        for stream in self.streams:
            if not stream.joined:
                continue  # never opened: counted as a failed connect, not as lost events
            expected += len(stream.want)
            delivered += len(stream.want.intersection(stream.seen))
            if stream.done_at is not None:
                done_times.append(stream.done_at - start)
        report = {
            "expected": expected,
            "delivered": delivered,
            "duplicates": self.duplicates,
            "unexpected": self.unexpected,
            "latencies": self.latencies,
            "done_max": max(done_times, default=None),
            "open": len(self.open),
            "heartbeats": self.heartbeats,
            "other_events": self.other_events,
            "cpu": _cpu() - cpu,
        }
        return report

    def close(self) -> dict:
        for stream in list(self.open):
            if stream.transport:
                stream.transport.close()
        self.open.clear()
        return {"closed": True}

    def stats(self) -> dict:
        heartbeats, self.heartbeats = self.heartbeats, 0
        return {"open": len(self.open), "heartbeats": heartbeats, "cpu_total": _cpu(), "reconnects": self.reconnects}


async def main() -> None:
    loop = asyncio.get_running_loop()

    def read() -> dict:
        return json.loads(sys.stdin.readline() or '{"cmd": "exit"}')

    client = Client(await loop.run_in_executor(None, read))
    while True:
        command = await loop.run_in_executor(None, read)
        name = command.pop("cmd")
        if name == "exit":
            client.close()
            break
        if name == "connect":
            reply = await client.connect(**command)
        elif name == "expect":
            reply = client.expect(**command)
        elif name == "collect":
            reply = await client.collect(**command)
        elif name == "close":
            reply = client.close()
        elif name == "reconnect":
            reply = client.reconnect(**command)
        else:
            reply = client.stats()
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()


def loop_name() -> str:
    """The event loop the load processes run: uvloop unless BENCH_CLIENT_LOOP=asyncio or it is missing.

    The load processes share the machine's cores with the server they measure:
    every microsecond they spend per event is one the server waits for a core,
    and in a 10,000-stream broadcast they are most of the latency's tail.
    uvloop's reads cost them far less than asyncio's
    (docs/performance.md#the-load-client-on-uvloop); asyncio is the client
    that lines in bench/runs.jsonl without a "client_loop" were measured with.
    """
    if os.environ.get("BENCH_CLIENT_LOOP", "uvloop") != "uvloop":
        return "asyncio"
    try:
        import uvloop  # noqa: F401  # bench/requirements.txt
    except ImportError:
        return "asyncio"
    return "uvloop"


if __name__ == "__main__":
    resource.setrlimit(resource.RLIMIT_NOFILE, (resource.getrlimit(resource.RLIMIT_NOFILE)[1],) * 2)
    if loop_name() == "uvloop":
        import uvloop

        uvloop.run(main())
    else:
        asyncio.run(main())
