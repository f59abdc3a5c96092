"""An event-stream parser written to the WHATWG spec, to read back what the server sent."""

import re
from dataclasses import dataclass, field


@dataclass
class Event:
    data: str
    type: str = "message"
    last_event_id: str = ""


@dataclass
class Parser:
    """Feed bytes; collect dispatched events, comments and the retry value."""

    events: list[Event] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)
    retry: int | None = None
    last_event_id: str = ""
    _buffer: str = ""
    _data: list[str] = field(default_factory=list)
    _type: str = ""
    _started: bool = False

    def feed(self, chunk: bytes) -> list[Event]:
        text = chunk.decode("utf-8")
        if not self._started:
            self._started = True
            text = text.removeprefix("\ufeff")
        self._buffer += text
        before = len(self.events)
        lines = re.split(r"\r\n|\r|\n", self._buffer)
        # A trailing CR may be the first half of CRLF: keep it for the next chunk.
        self._buffer = lines.pop()
        for line in lines:
            self._line(line)
        return self.events[before:]

    def _line(self, line: str) -> None:
        if line == "":
            self._dispatch()
        elif line.startswith(":"):
            self.comments.append(line[1:].removeprefix(" "))
        else:
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "event":
                self._type = value
            elif name == "data":
                self._data.append(value)
            elif name == "id" and "\0" not in value:
                self.last_event_id = value
            elif name == "retry" and value.isascii() and value.isdigit():
                self.retry = int(value)

    def _dispatch(self) -> None:
        if self._data:
            self.events.append(Event("\n".join(self._data), self._type or "message", self.last_event_id))
        self._data, self._type = [], ""
