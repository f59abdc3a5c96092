"""Writes of the event log: the outbox a transaction publishes into, and the ordered log after it.

Ids are taken at insert but become visible at commit, so two publishers can
commit out of order and a replay of "everything after id N" would skip the
one that commits late. Every log write therefore runs in a short transaction
of its own under one PostgreSQL advisory lock (SQLite has one writer anyway):
when id N is visible, so is every id below it.

Taking that lock inside the caller's transaction would serialise all
publishers behind the slowest. Instead publish() writes an outbox row there,
which commits or rolls back with the caller's data, and moves it into the log
right after the commit (move()). A publisher that dies in between leaves the
row behind, and any process's hub moves it on its recovery sweep (sweep(),
called by eventlog.settled_after). A move deletes the outbox rows in the same
transaction that appends them to the log, so each event reaches the log
exactly once (docs/reliability.md).

A move is a group commit: it takes every committed outbox row, every
publisher's, not only its caller's, so concurrent publishers share one locked
transaction and one log commit instead of queueing for one each; a publisher
whose rows a move before it took has nothing left to do. On PostgreSQL the
move is one round trip (lock, delete, append and commit in one message), so no
Python runs while the lock is held: on a busy machine a lock holder that the
OS deschedules between statements stalls every publisher behind it
(docs/performance.md#publish-throughput). Once its rows have committed a
publisher need not wait for the lock at all: try_move() only tries it, and
leaves a move it could not make to livefeed.mover.
"""

import datetime
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.db import connections, router, transaction
from django.utils import timezone

logger = logging.getLogger("livefeed")

# Any constant shared by all publishers: the key of PostgreSQL's advisory lock.
_LOG_LOCK = 0x6C697665  # "live"
_BATCH = 1000

Message = dict[str, Any]

_last_moved = threading.local()  # (database, outbox ids) of this thread's last move
# Seconds publishes go through the outbox without trying the log's lock, after a try found it taken.
_CONTENDED_FOR = 1.0
_contended_until = 0.0


def database() -> str:
    """Return the alias of the database the event log lives in."""
    from livefeed.models import Event

    return router.db_for_write(Event)


def hold(messages: list[Message], using: str) -> dict[int, Message]:
    """Write messages to the outbox in the current transaction; return them by outbox id."""
    from livefeed.models import OutboxEvent, insert

    # The last move's ids mean "already sent" only until the next insert: an id can
    # come back after a rollback (SQLite's sequence rolls back with it, as in a test
    # case's transaction), and move() would then skip a row nobody sent.
    _last_moved.ids = None

    if connections[using].vendor == "postgresql":  # one plain statement (livefeed.models.insert)
        now = timezone.now()
        values = [(m["channel"], m["event"], m["data"], now) for m in messages]
        ids = insert(OutboxEvent, using, ["channel", "event", "data", "created_at"], values, returning=True)
        return dict(zip(ids, messages, strict=True))
    rows = [OutboxEvent(channel=m["channel"], event=m["event"], data=m["data"]) for m in messages]
    _insert(rows, using)
    return {row.pk: message for row, message in zip(rows, messages, strict=True)}


def move(held: dict[int, Message], using: str) -> list[Message]:
    """Move every committed outbox row to the log in id order; return the messages moved, with their ids.

    held (from hold()) get their ids in place and are among those returned,
    unless another move took them first: that move's caller sends them.
    Rows of other publishers come back as new messages, for the caller to send.
    """
    if _moved_before(held, using):
        return []
    moved: list[Message] = []
    ids: set[int] = set()
    while True:
        rows = _move_postgresql(using) if _one_trip(using) else _move_rows(using)
        moved += _messages(rows, held)
        ids.update(row[0] for row in rows)
        if len(rows) < _BATCH:  # else more wait, maybe the caller's own
            _last_moved.ids = (using, ids)
            return moved


def _moved_before(held: dict[int, Message], using: str) -> bool:
    last = getattr(_last_moved, "ids", None)
    # This thread's previous move took them and sent them: the next of several
    # publishes in one transaction, whose hooks run one after the other.
    return bool(held) and last is not None and last[0] == using and held.keys() <= last[1]


def try_move(held: dict[int, Message], using: str) -> tuple[list[Message], bool]:
    """move(), but only if the log's lock is free now; return the messages moved and whether rows are left.

    For committed outbox rows (held from hold()): nothing but the lock stands
    between them and the log, and waiting for it would only queue the caller
    behind the other publishers' commits. Rows left (the lock was taken, or
    more than one batch waits) are for move(), which livefeed.mover runs in the
    background. Where the log has no such lock (SQLite's one writer) or the
    rows are not committed yet (autocommit off), this is move().
    """
    if not _one_trip(using) or not connections[using].get_autocommit():
        return move(held, using), False
    if _moved_before(held, using):
        return [], False
    rows = _move_if_free(held, using)
    if not rows:  # the lock was taken, or another publisher's move took these rows: the mover finds out
        return [], True
    _last_moved.ids = (using, {row[0] for row in rows})
    return _messages(rows, held), len(rows) >= _BATCH


def _messages(rows: list[tuple[int, int, str, str, str]], held: dict[int, Message]) -> list[Message]:
    """Return the messages of moved rows with their log ids: the held ones, and new ones for other publishers' rows."""
    messages = []
    for outbox_id, event_id, channel, event, data in rows:
        message = held.get(outbox_id)
        if message is None:
            message = {"type": "livefeed.event", "channel": channel, "event": event, "data": data}
        message["id"] = event_id
        messages.append(message)
    return messages


def move_held(held: dict[int, Message], using: str) -> list[Message]:
    """Move held into the log inside the transaction that holds them, if the log's lock is free now.

    For a transaction livefeed opened itself (publishing.atomic): nothing runs
    in it after this but the commit, so it may hold the lock until then, and its
    events commit once instead of twice. It never waits for the lock, which
    would queue it behind other publishers with its row locks held. Return
    the messages moved, with their ids, other publishers' committed rows too
    (as move() does); none if the lock was taken (the caller moves them after
    the commit) or if savepoints rolled them all back.
    """
    if not held:
        return []
    # Django's foreign keys are checked at commit: checked first, one that fails takes no log id,
    # where a hole in the ids would hold every hub's next live events for REORDER_TIMEOUT.
    return _messages(_move_if_free(held, using, before="SET CONSTRAINTS ALL IMMEDIATE"), held)


def _move_if_free(held: dict[int, Message], using: str, before: str = "") -> list[tuple[int, int, str, str, str]]:
    """Run the move of held and the committed rows if the log's lock is free now; return the rows moved.

    None moved counts as contention: the lock was taken, or another move took them.
    """
    if _contended():
        return []
    statement = _move_sql(using, own=True)
    with connections[using].cursor() as cursor:
        cursor.execute(f"{before}; {statement}" if before else statement, [list(held)])
        if before:
            cursor.cursor.nextset()  # past its empty result
        rows = cursor.fetchall()
    if not rows:
        _saw_contention()
    return rows


def _contended() -> bool:
    return time.monotonic() < _contended_until


def _saw_contention() -> None:
    # Others publish too: while they do, a try costs a round trip for nothing.
    global _contended_until
    _contended_until = time.monotonic() + _CONTENDED_FOR


def moves_held(using: str) -> bool:
    """Whether move_held() may move rows inside their own transaction: the log's lock is PostgreSQL's."""
    return connections[using].vendor == "postgresql"


def record(messages: list[Message], using: str) -> tuple[list[Message], bool]:
    """Store messages outside a transaction; return those moved into the log (ids set), and whether rows are left.

    In the log at once if its lock is free, else committed in the outbox and
    left for a move (try_move()): either way the events are stored when this returns.
    """
    if _append_now(messages, using):
        return messages, False
    return try_move(hold(messages, using), using)


def _append_now(messages: list[Message], using: str) -> bool:
    """Append messages to the log in one statement if the log's lock is free and the outbox empty; whether they were.

    One round trip and one commit instead of the outbox's two of each. Rows in
    the outbox go first (its next move takes them, a dead publisher's too), and
    publishers that contend do better through it: their rows commit side by
    side and one move takes them all, where appends would each wait for the
    last one's commit.
    """
    connection = connections[using]
    # With autocommit off the statement would hold the lock until the caller commits.
    if not messages or len(messages) > _BATCH or not _one_trip(using) or not connection.get_autocommit():
        return False
    if _contended():
        return False
    with connection.cursor() as cursor:
        cursor.execute(
            _append_sql(using, len(messages)),
            [value for m in messages for value in (m["channel"], m["event"], m["data"])],
        )
        ids = [row[0] for row in cursor.fetchall()]
    if not ids:
        _saw_contention()
        return False
    for message, event_id in zip(messages, ids, strict=True):
        message["id"] = event_id
    return True


def sweep(older_than: float) -> int:
    """Move outbox rows older than older_than seconds into the log; return how many."""
    from livefeed.models import OutboxEvent

    using = database()
    cutoff = timezone.now() - datetime.timedelta(seconds=older_than)
    stale = OutboxEvent.objects.using(using).filter(created_at__lt=cutoff)
    if not stale.exists():  # the usual answer, without taking the log's lock
        return 0
    with _log_transaction(using):
        oldest = stale.select_for_update(skip_locked=True).order_by("pk")
        rows = list(oldest.values_list("pk", "channel", "event", "data")[:_BATCH])
        OutboxEvent.objects.using(using).filter(pk__in=[row[0] for row in rows]).delete()
        _append([{"channel": c, "event": e, "data": d, "id": None} for _, c, e, d in rows], using)
    if rows:
        logger.warning("Moved %d event(s) a publisher left in the outbox (it died after its commit)", len(rows))
    return len(rows)


@contextmanager
def _log_transaction(using: str) -> Iterator[None]:
    with transaction.atomic(using=using):
        connection = connections[using]
        if connection.vendor == "postgresql":
            # Held until commit: ids then commit in the order they were taken.
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_LOG_LOCK])
        yield


def _move_rows(using: str) -> list[tuple[int, int, str, str, str]]:
    from livefeed.models import OutboxEvent

    with _log_transaction(using):
        outbox = OutboxEvent.objects.using(using)
        rows = list(outbox.order_by("pk").values_list("pk", "channel", "event", "data")[:_BATCH])
        outbox.filter(pk__in=[row[0] for row in rows]).delete()
        messages: list[Message] = [{"channel": c, "event": e, "data": d, "id": None} for _, c, e, d in rows]
        _append(messages, using)
    return [(pk, message["id"], c, e, d) for (pk, c, e, d), message in zip(rows, messages, strict=True)]


def _one_trip(using: str) -> bool:
    connection = connections[using]
    # Inside a transaction the lock would be held until the caller's commit.
    return connection.vendor == "postgresql" and not connection.in_atomic_block


def _move_postgresql(using: str) -> list[tuple[int, int, str, str, str]]:
    # Several statements in one message run as one implicit transaction: the
    # lock is taken first and held until the whole message commits.
    with connections[using].cursor() as cursor:
        cursor.execute(_move_sql(using))
        cursor.cursor.nextset()  # past the lock's row
        return cursor.fetchall()


def _move_sql(using: str, own: bool = False) -> str:
    """The PostgreSQL move: lock, take up to _BATCH outbox rows, append them in outbox order, commit.

    own: only if the lock is free now (move_held in the caller's transaction,
    try_move in autocommit): the rows whose ids are the one parameter, however
    many, and up to _BATCH committed ones. The ids go in as one array, which
    PostgreSQL reads through the primary key whatever its estimate of the
    table; an OR of the two lists made it read the whole table, dead rows too.
    Only a holder of the lock deletes outbox rows, so none needs a row lock: a
    try that fails leaves no row locked behind it.
    """
    log, box = _tables(using)
    if own:  # one statement; the lock's subquery is evaluated once, before any row is deleted
        lock = ""
        taken = (
            f"(SELECT pg_try_advisory_xact_lock({_LOG_LOCK})) "
            f"AND id = ANY(ARRAY(SELECT unnest(%s::bigint[]) UNION (SELECT id FROM {box} ORDER BY id LIMIT {_BATCH})))"
        )
    else:
        lock = f"SELECT pg_advisory_xact_lock({_LOG_LOCK});\n"
        taken = f"id = ANY(ARRAY(SELECT id FROM {box} ORDER BY id LIMIT {_BATCH} FOR UPDATE SKIP LOCKED))"
    # Log ids are taken in the INSERT's row order, so row numbers pair each outbox row with its log id.
    return f"""{lock}WITH moved AS (
    DELETE FROM {box} WHERE {taken}
    RETURNING id, channel, event, data
), ordered AS (
    SELECT id, channel, event, data, row_number() OVER (ORDER BY id) AS n FROM moved
), appended AS (
    INSERT INTO {log} (channel, event, data, created_at)
    SELECT channel, event, data, now() FROM ordered ORDER BY n RETURNING id
)
SELECT o.id, a.id, o.channel, o.event, o.data
FROM ordered o JOIN (SELECT id, row_number() OVER (ORDER BY id) AS n FROM appended) a USING (n)
ORDER BY a.id"""


def _append_sql(using: str, count: int) -> str:
    """The PostgreSQL append of count rows (channel, event, data): if the lock is free and the outbox empty."""
    log, box = _tables(using)
    values = ", ".join(["(%s, %s, %s)"] * count)
    # The condition is evaluated once, before any row: all of the rows or none, ids taken in row order.
    # created_at is the database's now(), as in a move.
    return f"""INSERT INTO {log} (channel, event, data, created_at)
SELECT *, now() FROM (VALUES {values}) AS v
WHERE (SELECT pg_try_advisory_xact_lock({_LOG_LOCK}) AND NOT EXISTS (SELECT 1 FROM {box} ORDER BY id LIMIT 1))
RETURNING id"""


def _tables(using: str) -> tuple[str, str]:
    """Return the quoted names of the log's and the outbox's tables."""
    from livefeed.models import Event, OutboxEvent

    quote = connections[using].ops.quote_name
    return quote(Event._meta.db_table), quote(OutboxEvent._meta.db_table)


def _append(messages: list[Message], using: str) -> None:
    from livefeed.models import Event

    rows = [Event(channel=m["channel"], event=m["event"], data=m["data"]) for m in messages]
    _insert(rows, using)
    for row, message in zip(rows, messages, strict=True):
        message["id"] = row.pk


def _insert(rows: list[Any], using: str) -> None:
    # One statement where the database returns the new ids (PostgreSQL, SQLite).
    if not rows:
        return
    if connections[using].features.can_return_rows_from_bulk_insert:
        type(rows[0])._default_manager.using(using).bulk_create(rows)
    else:  # MySQL
        for row in rows:
            row.save(using=using)
