"""Streamed answers, the AI-chat pattern: a producer's text chunks reach the browser as they come.

A producer is an async generator of text chunks (the words of a model's
answer); a sync iterable works too and is read in a worker thread. Two ways
to deliver it, with the same events:

- start_answer()/astart_answer() run the producer in the background and
  publish each chunk on the user's own channel "answer.<user pk>.<key>", which
  only that user may read. Chunks are stored in the event log, so a page that
  reconnects with Last-Event-ID resumes mid-answer. The widget's
  `livefeed.answer(channel, element)` subscribes and renders it.
- answer_response() returns the answer as the SSE body of this very response,
  for clients that POST the prompt and read the stream with fetch().

Events: `token` with {"answer": id, "text": chunk} per chunk, then one `done`
with {"answer": id, "status": "complete" | "failed"}. `done` is the end marker,
the role of OpenAI's `data: [DONE]`: a client stops reading there. A failing
producer is logged and ends with status "failed"; the stream never breaks.
"""

import asyncio
import contextvars
import json
import logging
import re
import secrets
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Iterable
from contextlib import aclosing
from typing import Any

from django.http import StreamingHttpResponse

from livefeed import eventlog, sse
from livefeed.bridge import sender_loop
from livefeed.channels import validate
from livefeed.publishing import apublish
from livefeed.views import event_stream_response

__all__ = ["PATTERN", "answer_response", "astart_answer", "authorize", "channel_for", "start_answer"]

logger = logging.getLogger("livefeed")

PATTERN = "answer.{owner}.{key}"
_KEY = re.compile(r"[A-Za-z0-9_-]{1,40}")
_END = object()

Producer = AsyncIterable[str] | Iterable[str]

# Background answers in flight: the loop keeps only weak references to tasks.
_running: set[asyncio.Task] = set()

# apublish() wrote the log from a worker thread; when the answer ends, close
# that thread's DB connection, so no idle connection outlives it (docs/design.md#trap-10).
_release_connection = eventlog.in_thread(lambda: None)


def channel_for(user: Any, key: str | None = None) -> str:
    """Return the answer channel of user for key (a new random key when None)."""
    if not getattr(user, "is_authenticated", False):
        raise ValueError("A streamed answer needs a signed-in user: its channel is readable by its owner only.")
    key = secrets.token_urlsafe(12) if key is None else key
    if not _KEY.fullmatch(key):
        raise ValueError(f"Invalid answer key {key!r}: use 1-40 ASCII letters, digits, '-' or '_'.")
    return validate(f"answer.{user.pk}.{key}")


def authorize(user: Any, owner: str, key: str) -> bool:
    """Let only the user who started an answer read its channel (registered for PATTERN)."""
    return user.is_authenticated and str(user.pk) == owner


def start_answer(user: Any, producer: Producer, *, key: str | None = None) -> str:
    """Publish producer's chunks on user's answer channel in the background; return the channel now."""
    channel = channel_for(user, key)
    # An empty context: the task outlives the request that starts it and must
    # not run its sync steps in that request's (soon gone) thread.
    contextvars.Context().run(asyncio.run_coroutine_threadsafe, _publish(channel, producer), sender_loop())
    return channel


async def astart_answer(user: Any, producer: Producer, *, key: str | None = None) -> str:
    """Async twin of start_answer(): the producer runs as a task on the running loop."""
    channel = channel_for(user, key)
    asyncio.create_task(_publish(channel, producer), context=contextvars.Context())
    return channel


def answer_response(producer: Producer) -> StreamingHttpResponse:
    """Return a response whose body is the answer as SSE, for a fetch() that POSTed the prompt."""
    return event_stream_response(_stream(producer))


async def _publish(channel: str, producer: Producer) -> None:
    task = asyncio.current_task()
    assert task is not None  # always: a coroutine run as a task
    _running.add(task)
    try:
        async with aclosing(_events(channel, producer)) as events:
            async for event, data in events:
                await apublish(channel, event, data)  # stored: Last-Event-ID resumes mid-answer
    except Exception:
        logger.exception("Could not publish the answer on %s", channel)
        await _give_up(channel)
    finally:
        _running.discard(task)
        await _release_connection()


async def _give_up(channel: str) -> None:
    # Best effort: a page waiting for `done` should not wait forever.
    try:
        await apublish(channel, "done", {"answer": channel, "status": "failed"})
    except Exception:
        logger.warning("Could not end the answer on %s either", channel)


async def _stream(producer: Producer) -> AsyncIterator[bytes]:
    try:
        # Headers leave with the first body chunk: send one before the producer
        # starts thinking (docs/design.md#trap-2).
        yield sse.comment("answer")
        async with aclosing(_events(secrets.token_urlsafe(12), producer)) as events:
            async for event, data in events:
                yield sse.encode(json.dumps(data, ensure_ascii=False, separators=(",", ":")), event=event)
    except Exception:
        # Escaping to daphne would hang the client (docs/design.md#trap-4).
        logger.exception("Answer stream failed; closing it")


async def _events(answer: str, producer: Producer) -> AsyncGenerator[tuple[str, dict[str, Any]]]:
    """Yield a (event, data) pair per chunk, then `done`; a failing producer ends as "failed"."""
    status = "complete"
    try:
        # aclosing: whoever stops reading (a disconnect, a failed publish) closes the producer.
        async with aclosing(_chunks(producer)) as chunks:
            async for chunk in chunks:
                yield "token", {"answer": answer, "text": chunk}
    except Exception:
        logger.exception("Answer producer failed (%s)", answer)
        status = "failed"
    yield "done", {"answer": answer, "status": status}


async def _chunks(producer: Producer) -> AsyncGenerator[str]:
    # A disconnect cancels the await below; the finally then closes the producer,
    # which stops a model client's request too (docs/design.md#trap-3).
    iterator: Any = aiter(producer) if isinstance(producer, AsyncIterable) else iter(producer)
    try:
        while True:
            if isinstance(producer, AsyncIterable):
                chunk = await anext(iterator, _END)
            else:  # a sync producer may block: never on the server's loop
                chunk = await asyncio.to_thread(next, iterator, _END)
            if chunk is _END:
                return
            if not isinstance(chunk, str):
                raise TypeError(f"An answer producer must yield str chunks, not {type(chunk).__name__}.")
            if chunk:
                yield chunk
    finally:
        await _close(iterator)


async def _close(iterator: Any) -> None:
    try:
        if hasattr(iterator, "aclose"):
            await iterator.aclose()
        elif hasattr(iterator, "close"):
            iterator.close()
    except Exception:  # e.g. a sync generator still running in its thread
        logger.debug("Could not close an answer producer", exc_info=True)
