"""The demo's streamed answer. A STAND-IN for a language model: it replays a canned text word by word.

To stream a real model, replace stand_in_answer() by an async generator that
yields its text chunks, e.g. with the OpenAI client:

    async def model_answer(prompt):
        stream = await client.chat.completions.create(
            model="…", messages=[{"role": "user", "content": prompt}], stream=True
        )
        async for chunk in stream:
            yield chunk.choices[0].delta.content or ""

The views hand it to livefeed.answers unchanged.
"""

import asyncio
from collections.abc import AsyncIterator

WORD_DELAY = 0.03  # seconds between words: slow enough to see them arrive


def stand_in_text(prompt: str) -> str:
    """Return the whole text the stand-in answers with."""
    return (
        f"You asked: “{prompt.strip()}”. This is a stand-in producer, not a model: it sends a "
        "prepared text one word at a time, the way a language model streams its tokens. Each "
        "word is an SSE event on your own answer channel, stored in the event log, so a page "
        "that reconnects mid-answer resumes where it stopped."
    )


async def stand_in_answer(prompt: str) -> AsyncIterator[str]:
    """Yield the stand-in text word by word, with small delays."""
    for index, word in enumerate(stand_in_text(prompt).split(" ")):
        await asyncio.sleep(WORD_DELAY)
        yield word if index == 0 else f" {word}"
