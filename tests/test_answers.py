"""Streamed answers: chunks arrive as `token` events then `done`, resumable mid-answer (issue 6)."""

import asyncio
import json
from collections.abc import AsyncGenerator
from typing import cast

import pytest
from django.contrib.auth.models import User
from django.db.models import Max

import livefeed
from livefeed import answers, sse
from livefeed.models import Event
from tests.sse_parser import Parser
from tests.streams import Stream, run

pytestmark = pytest.mark.django_db(transaction=True)

WORDS = ["Server-Sent ", "Events ", "stream ", "answers ", "word ", "by ", "word."]


async def words(gate: asyncio.Event | None = None, pause_after: int = 2):
    """Yield WORDS; with a gate, wait for it after the first few, like a model thinking."""
    for index, word in enumerate(WORDS):
        if gate is not None and index == pause_after:
            await gate.wait()
        yield word


def log_position() -> int:
    """Return the newest event id: where a page loaded now resumes from (the widget's data-last-event-id).

    Publishes one event first, as a live site's log is never empty: ids do not
    restart between tests, and "after 0" on a log starting higher is a reset.
    """
    livefeed.publish("elsewhere", "anchor")
    return Event.objects.aggregate(newest=Max("id"))["newest"]


def answer_stream(channel: str, session_key: str, after: int) -> Stream:
    return Stream(f"/livefeed/stream/?channel={channel}&lastEventId={after}", session_key=session_key)


def texts(events):
    return [json.loads(e.data)["text"] for e in events if e.type == "token"]


def test_a_started_answer_reaches_its_owner_token_by_token_then_done(alice, alice_session):
    user, session_key = alice, alice_session

    async def scenario():
        gate = asyncio.Event()
        channel = await answers.astart_answer(user, words(gate, pause_after=0), key="first")
        stream = await Stream(f"/livefeed/stream/?channel={channel}", session_key=session_key).open()
        await stream.connected()
        gate.set()
        events = await stream.events(len(WORDS) + 1, timeout=10)
        await stream.close()
        return channel, events

    channel, events = run(scenario)
    assert channel == f"answer.{user.pk}.first"
    assert "".join(texts(events)) == "".join(WORDS)
    assert [e.type for e in events] == ["token"] * len(WORDS) + ["done"]
    assert json.loads(events[-1].data) == {"answer": channel, "status": "complete"}


def test_an_answer_resumes_mid_way_with_last_event_id(alice, alice_session):
    user, session_key = alice, alice_session
    start = log_position()

    async def scenario():
        gate = asyncio.Event()
        channel = await answers.astart_answer(user, words(gate), key="resume")
        # The page was loaded before the answer began: it resumes from there.
        first = await answer_stream(channel, session_key, start).open()
        before = await first.events(2)
        await first.close()  # the connection drops after two words
        gate.set()
        resumed = Stream(
            f"/livefeed/stream/?channel={channel}",
            session_key=session_key,
            headers=[("last-event-id", before[-1].last_event_id)],
        )
        await resumed.open()
        after = await resumed.events(len(WORDS) - 2 + 1, timeout=10)
        await resumed.close()
        return before, after

    before, after = run(scenario)
    assert texts(before) == WORDS[:2]
    assert texts(after) == WORDS[2:]  # no gap, no repeat
    assert after[-1].type == "done"


def test_nobody_else_may_read_an_answer(alice, bob_session):
    channel = answers.channel_for(alice, "secret")

    async def scenario():
        return (await answer_stream(channel, bob_session, 0).open()).status

    assert run(scenario) == 403


def test_a_failing_producer_ends_the_answer_as_failed(alice, alice_session):
    user, session_key = alice, alice_session

    async def broken():
        yield "Half an "
        raise ConnectionError("the model went away")

    start = log_position()

    async def scenario():
        channel = await answers.astart_answer(user, broken())
        stream = await answer_stream(channel, session_key, start).open()
        events = await stream.events(2)
        await stream.close()
        return events

    events = run(scenario)
    assert texts(events) == ["Half an "]
    assert (events[-1].type, json.loads(events[-1].data)["status"]) == ("done", "failed")


def test_a_sync_producer_from_sync_code_works_too(alice, alice_session):
    user, session_key = alice, alice_session
    start = log_position()
    channel = answers.start_answer(user, iter(WORDS))

    async def scenario():
        stream = await answer_stream(channel, session_key, start).open()
        events = await stream.events(len(WORDS) + 1, timeout=10)
        await stream.close()
        return events

    events = run(scenario)
    assert "".join(texts(events)) == "".join(WORDS)
    assert events[-1].type == "done"


def test_answer_keys_are_checked():
    with pytest.raises(ValueError, match="signed-in"):
        answers.channel_for(type("Anonymous", (), {"is_authenticated": False})())
    user = User(pk=7, username="x")
    with pytest.raises(ValueError, match="Invalid answer key"):
        answers.channel_for(user, "no.dots")
    assert answers.channel_for(user).startswith("answer.7.")


# The answer as the body of a POST response, read with fetch() -------------------


async def read_response(response, parser: Parser, limit: int | None = None) -> list[bytes]:
    """Read the streaming body (up to limit chunks), as the ASGI handler would."""
    chunks = []
    async for chunk in response.streaming_content:
        chunks.append(chunk)
        parser.feed(chunk)
        if limit and len(chunks) == limit:
            break
    return chunks


def test_a_response_streams_the_answer_as_sse():
    parser = Parser()

    async def scenario():
        response = answers.answer_response(words())
        chunks = await read_response(response, parser)
        return response, chunks

    response, chunks = run(scenario)
    assert response["Content-Type"] == "text/event-stream; charset=utf-8"
    assert response["Cache-Control"] == "no-cache, no-transform"
    assert chunks[0] == sse.comment("answer")
    assert "".join(texts(parser.events)) == "".join(WORDS)
    assert parser.events[-1].type == "done"
    assert json.loads(parser.events[-1].data)["status"] == "complete"
    assert all(not e.last_event_id for e in parser.events)  # nothing to resume: one request


def test_a_response_sends_its_first_bytes_before_the_producer_answers():
    parser = Parser()

    async def silent():
        await asyncio.Event().wait()  # a model that never answers
        yield "never"

    async def scenario():
        return await read_response(answers.answer_response(silent()), parser, limit=1)

    assert run(scenario) == [sse.comment("answer")]


def broken():
    yield "Half an "
    raise ConnectionError("the model went away")


@pytest.mark.parametrize(
    "producer",
    [broken, lambda: iter(["Half an ", None]), lambda: iter(["Half an ", b"bytes"])],
    ids=["raises", "yields-none", "yields-bytes"],
)
def test_a_failing_producer_ends_the_response_cleanly(producer):
    parser = Parser()

    async def scenario():
        return await read_response(answers.answer_response(producer()), parser)

    run(scenario)
    assert texts(parser.events) == ["Half an "]
    assert json.loads(parser.events[-1].data)["status"] == "failed"


async def thinking(closed: list):
    """Yield one word, then think forever; record being closed."""
    try:
        yield "Hmm "
        await asyncio.Event().wait()
        yield "never"
    finally:
        closed.append(True)


def test_a_client_going_away_while_the_model_thinks_closes_the_producer():
    closed: list[bool] = []

    async def scenario():
        body = cast(AsyncGenerator[bytes], answers.answer_response(thinking(closed)).streaming_content)
        await anext(body)  # the comment
        await anext(body)  # the first token
        reading = asyncio.ensure_future(anext(body))
        await asyncio.sleep(0)
        reading.cancel()  # the ASGI handler cancels the response when the client disconnects
        with pytest.raises(asyncio.CancelledError):
            await reading

    run(scenario)
    assert closed == [True]


def test_a_response_closed_between_chunks_closes_the_producer():
    closed: list[bool] = []

    async def scenario():
        body = cast(AsyncGenerator[bytes], answers.answer_response(thinking(closed)).streaming_content)
        await anext(body)
        await anext(body)
        await body.aclose()  # the response parked on a yield, closed by its owner

    run(scenario)
    assert closed == [True]
