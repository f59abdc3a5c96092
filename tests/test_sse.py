"""The wire format, byte for byte, and read back by a parser written to the spec."""

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from livefeed import sse
from tests.sse_parser import Parser


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"data": "hello"}, b"data: hello\n\n"),
        ({"data": "a\nb"}, b"data: a\ndata: b\n\n"),
        ({"data": "a\r\nb\rc"}, b"data: a\ndata: b\ndata: c\n\n"),
        ({"data": "x", "event": "notification", "id": 7}, b"id: 7\nevent: notification\ndata: x\n\n"),
        ({"data": ""}, b"data: \n\n"),
        ({"data": "trailing\n"}, b"data: trailing\ndata: \n\n"),
        ({"data": " lead"}, b"data:  lead\n\n"),
        ({"data": "é✓"}, "data: é✓\n\n".encode()),
    ],
)
def test_encode_bytes(kwargs, expected):
    assert sse.encode(**kwargs) == expected


@pytest.mark.parametrize("bad", ["a\nb", "a\rb", "a\0b", "\r\n"])
@pytest.mark.parametrize("field", ["event", "id"])
def test_line_breaks_and_nul_in_id_or_event_are_refused(field, bad):
    with pytest.raises(ValueError, match="CR, LF or NUL"):
        sse.encode("x", **{field: bad})


def test_comment_and_retry():
    assert sse.comment("keep-alive") == b": keep-alive\n"
    assert sse.comment("a\nb") == b": a\n: b\n"
    assert sse.retry(3000) == b"retry: 3000\n"
    for bad in (-1, 1.5, "10", True):
        with pytest.raises(ValueError):
            sse.retry(bad)  # type: ignore[arg-type]  # wrong types on purpose


def test_no_byte_order_mark():
    assert not sse.encode("x").startswith(b"\xef\xbb\xbf")


names = st.text(st.characters(blacklist_characters="\r\n\0", blacklist_categories=["Cs"]), min_size=1)


@given(
    data=st.text(st.characters(blacklist_categories=["Cs"])),
    event=names,
    event_id=st.integers(min_value=0, max_value=2**63),
)
def test_parser_reads_back_exactly_what_was_encoded(data, event, event_id):
    parser = Parser()
    chunk = sse.retry(1000) + sse.comment(data) + sse.encode(data, event=event, id=event_id)
    events = parser.feed(chunk)
    normalised = data.replace("\r\n", "\n").replace("\r", "\n")
    assert len(events) == 1
    # The spec strips one leading space from a value; the encoder adds exactly one.
    assert events[0].data == normalised
    assert events[0].type == event
    assert events[0].last_event_id == str(event_id)
    assert parser.retry == 1000


# Pieces of user content that look like fields, and every line break a parser
# honours (WHATWG: CRLF, a lone CR, a lone LF): a lone CR must split as well.
field_like = st.sampled_from(["id: 99", "event: forged", "data: forged", "retry: 1", ": comment", "", "x"])
line_breaks = st.sampled_from(["\n", "\r", "\r\n"])
content = st.lists(st.one_of(field_like, st.text(st.characters(blacklist_categories=["Cs"]))), min_size=1, max_size=5)


@example(parts=["x", "id: 99", "", "data: forged"], breaks=["\r"] * 3)  # "x\rid: 99\r\rdata: forged"
@given(parts=content, breaks=st.lists(line_breaks, min_size=4, max_size=4))
def test_user_content_never_adds_a_field(parts, breaks):
    """Whatever the data holds, the stream carries exactly one event with that id and that data."""
    data = parts[0] + "".join(brk + part for brk, part in zip(breaks, parts[1:], strict=False))
    parser = Parser()
    events = parser.feed(sse.encode(data, event="notification", id=5) + sse.encode("next", id=6))
    assert [(e.type, e.last_event_id) for e in events] == [("notification", "5"), ("message", "6")]
    assert events[0].data == data.replace("\r\n", "\n").replace("\r", "\n")
    assert parser.retry is None
