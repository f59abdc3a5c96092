import datetime
import logging
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, cast

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connections, models
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.module_loading import import_string
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

from livefeed import conf
from livefeed.actions import validate_actions
from livefeed.categories import muted_users, validate_category

logger = logging.getLogger("livefeed")

_PER_USER_BATCH = 2000  # users per per_user() statement, at most: fewer where the backend allows fewer parameters


def _room(connection: Any, wanted: int, per_item: int = 1, fixed: int = 0) -> int:
    """Return how many items of per_item parameters, besides fixed ones, fit in one statement (at most wanted)."""
    limit = connection.features.max_query_params
    return wanted if limit is None else max(1, min(wanted, (limit - fixed) // per_item))


def per_user(
    rows: models.QuerySet,
    user_ids: Iterable[Any],
    select: str,
    where: str = "",
    params: Sequence[Any] = (),
    grouped: bool = False,
    field: str = "user",
) -> Iterator[tuple[Any, tuple[Any, ...]]]:
    """Yield (user id as given, the other columns) of `SELECT user, {select} FROM rows' table
    WHERE user IN (...) [AND {where}] [GROUP BY user]`, in statements of up to _PER_USER_BATCH
    users; field names rows' foreign key to the user.

    Plain SQL for the queries a send or a connect makes every time: Django took
    several times a small statement's own time to build it (docs/design.md#trap-16).
    rows gives the table and the database only, not its filters.
    """
    connection = connections[rows.db]
    user = cast(models.ForeignKey, rows.model._meta.get_field(field))
    column = connection.ops.quote_name(user.column)
    where = f" AND {where}" if where else ""
    group = f" GROUP BY {column}" if grouped else ""
    keys = {user.get_db_prep_value(pk, connection): pk for pk in user_ids}  # the database's value: the caller's
    ids = list(keys)
    table = connection.ops.quote_name(rows.model._meta.db_table)
    size = _room(connection, _PER_USER_BATCH, fixed=len(params))
    with connection.cursor() as cursor:
        for start in range(0, len(ids), size):
            batch = ids[start : start + size]
            among = ", ".join(["%s"] * len(batch))
            cursor.execute(
                f"SELECT {column}, {select} FROM {table} WHERE {column} IN ({among}){where}{group}",
                [*batch, *params],
            )
            for pk, *values in cursor.fetchall():
                yield keys.get(pk, pk), tuple(values)


def insert(
    model: type[models.Model], using: str, fields: Sequence[str], rows: Iterable[Sequence[Any]], returning: bool = False
) -> list[Any]:
    """INSERT rows, each the values of fields in that order, into model's table in plain statements
    (one unless the backend's limit on parameters says more); with returning, return their new pks in
    row order (PostgreSQL, SQLite). Unnamed columns get NULL.

    For the inserts every send makes: the ORM's bulk_create cost more CPU than
    the statement (docs/design.md#trap-16). No signals, as with bulk_create.
    """
    connection = connections[using]
    quote = connection.ops.quote_name
    columns = [cast(models.Field, model._meta.get_field(name)) for name in fields]
    prepared = [
        [column.get_db_prep_save(value, connection) for column, value in zip(columns, row, strict=True)] for row in rows
    ]
    one = f"({', '.join(['%s'] * len(columns))})"
    names = ", ".join(quote(cast(str, column.column)) for column in columns)
    returned = f" RETURNING {quote(cast(str, model._meta.pk.column))}" if returning else ""
    size = _room(connection, len(prepared), per_item=len(columns))
    pks: list[Any] = []
    with connection.cursor() as cursor:
        for start in range(0, len(prepared), size):
            batch = prepared[start : start + size]
            values = ", ".join([one] * len(batch))
            cursor.execute(
                f"INSERT INTO {quote(model._meta.db_table)} ({names}) VALUES {values}{returned}",
                [value for row in batch for value in row],
            )
            if returning:
                pks.extend(row[0] for row in cursor.fetchall())
    return pks


class EventQuerySet(models.QuerySet):
    def after(self, last_id: int, channels: list[str]) -> "EventQuerySet":
        """Return events of these channels newer than last_id, oldest first."""
        return self.since(last_id).filter(channel__in=channels)

    def since(self, last_id: int) -> "EventQuerySet":
        """Return the events of every channel newer than last_id, oldest first."""
        return self.filter(id__gt=last_id).order_by("id")

    def window(self, after: int, limit: int) -> tuple[list[tuple[int, str, str, str]], int, int | None]:
        """Return up to limit (id, channel, event, data) of every channel newer than after, oldest first,
        and the log's newest and oldest ids, all seen at one moment.

        One statement, so one snapshot: no row can commit or be pruned between the
        rows and the ids that say how far they reach. A reconnect storm asks it over
        and over, and three ORM queries cost most of a reconnect's share of it
        (docs/performance.md#the-replay-windows-read-in-one-statement).
        """
        connection = connections[self.db]
        quote = connection.ops.quote_name
        meta = self.model._meta
        table = quote(meta.db_table)
        pk, channel, event, data = (
            quote(str(cast(models.Field, meta.get_field(name)).column)) for name in ("id", "channel", "event", "data")
        )
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT b.high, b.low, e.{pk}, e.{channel}, e.{event}, e.{data}"
                f" FROM (SELECT MAX({pk}) AS high, MIN({pk}) AS low FROM {table}) b"
                f" LEFT JOIN (SELECT {pk}, {channel}, {event}, {data} FROM {table} WHERE {pk} > %s"
                f" ORDER BY {pk} LIMIT %s) e ON 1 = 1 ORDER BY e.{pk}",
                [after, limit],
            )
            fetched = cursor.fetchall()
        high, low = fetched[0][:2]  # the aggregate's one row, joined to no event when none is newer
        return [row[2:] for row in fetched if row[2] is not None], high or 0, low

    def prune(self, older_than_seconds: float) -> int:
        """Delete events past the replay retention; return how many went."""
        cutoff = timezone.now() - datetime.timedelta(seconds=older_than_seconds)
        deleted, _ = self.filter(created_at__lt=cutoff).delete()
        return deleted


class Event(models.Model):
    """One published event: the source a reconnecting stream replays from.

    Its id is the SSE `id:` on every process, and ids become visible in
    increasing order (see livefeed.outbox), so "everything after id N" has no gaps.
    """

    id = models.BigAutoField(primary_key=True)
    channel = models.CharField(max_length=100)
    event = models.CharField(max_length=100)
    # The JSON text exactly as it goes on the wire, so replay re-sends the same bytes.
    data = models.TextField()
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    objects = EventQuerySet.as_manager()

    class Meta:
        indexes = [models.Index(fields=["channel", "id"], name="livefeed_event_channel_id")]

    def __str__(self) -> str:
        return f"{self.channel}/{self.event} #{self.pk}"


class OutboxEvent(models.Model):
    """An event published inside a transaction, committed with it, not yet in the Event log.

    It moves into the log right after that commit (livefeed.outbox); when its
    publisher dies first, any process's hub moves it.
    """

    id = models.BigAutoField(primary_key=True)
    channel = models.CharField(max_length=100)
    event = models.CharField(max_length=100)
    data = models.TextField()
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    def __str__(self) -> str:
        return f"{self.channel}/{self.event} (outbox #{self.pk})"


def validate_link(value: str) -> None:
    """Refuse links a browser would run as script ("javascript:…"): the widget renders them as hrefs."""
    if value and not value.startswith(("/", "http://", "https://")):
        raise ValidationError("Use a path starting with '/' or an http(s):// URL.", code="invalid_link")


class Notification(models.Model):
    """One message for an audience; each recipient's read state is a Delivery row.

    A group or everyone notification keeps its audience here and goes out as one
    live event on the group/broadcast channel; see livefeed.signals. One with a
    group_key goes out per recipient instead, since it may fold into a different
    earlier notification for each of them (livefeed.folding).
    """

    class Level(models.TextChoices):
        INFO = "info", _("info")
        SUCCESS = "success", _("success")
        WARNING = "warning", _("warning")
        ERROR = "error", _("error")

    class Audience(models.TextChoices):
        USERS = "user", _("users")
        GROUP = "group", _("group")
        EVERYONE = "everyone", _("everyone")

    title = models.CharField(_("title"), max_length=200)
    body = models.TextField(_("body"), blank=True)
    level = models.CharField(_("level"), max_length=10, choices=Level, default=Level.INFO)
    url = models.CharField(_("link"), max_length=500, blank=True, validators=[validate_link])
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+", verbose_name=_("actor")
    )
    data = models.JSONField(_("data"), default=dict, blank=True, encoder=DjangoJSONEncoder)
    audience = models.CharField(_("audience"), max_length=10, choices=Audience, default=Audience.USERS)
    group = models.ForeignKey(
        "auth.Group", models.SET_NULL, null=True, blank=True, related_name="+", verbose_name=_("group")
    )
    recipients = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        through="Delivery",
        through_fields=("notification", "user"),
        related_name="livefeed_notifications",
        blank=True,
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now, db_index=True)
    group_key = models.CharField(
        _("group key"),
        max_length=100,
        blank=True,
        help_text=_("Folds into the reader's unread notification with this key; {count} in a title counts them."),
    )
    actions = models.JSONField(
        _("actions"),
        default=list,
        blank=True,
        validators=[validate_actions],
        help_text=_('Up to 3 buttons: [{"label": "Approve", "url": "/orders/7/approve/", "method": "post"}]'),
    )
    expires_at = models.DateTimeField(
        _("expires"), null=True, blank=True, help_text=_("After this it leaves every inbox and is never emailed.")
    )
    category = models.CharField(
        _("category"),
        max_length=50,
        default="general",
        db_default="general",
        validators=[validate_category],
        help_text=_("One of LIVEFEED['CATEGORIES'] (or general): readers choose per category how it reaches them."),
    )
    # A lazy title or body is stored as its message (msgid) and translated per
    # reader, with params filled in (livefeed.language); plain ones are shown as given.
    params = models.JSONField(_("params"), default=dict, blank=True)
    translate_title = models.BooleanField(_("translate the title"), default=False, db_default=False)
    translate_body = models.BooleanField(_("translate the body"), default=False, db_default=False)

    class Meta:
        verbose_name = _("notification")
        verbose_name_plural = _("notifications")
        permissions = [("send_to_everyone", "Can send notifications to everyone")]

    def __str__(self) -> str:
        # In the admin's language: the stored msgid with its %(name)s placeholders means little to a reader.
        return self.shown(get_language())[0] if self.translated else self.title

    def audience_users(self) -> models.QuerySet:
        """Return the users this notification is for: its recipients, or the active users of its audience."""
        users = get_user_model()._default_manager.all()
        if self.audience == self.Audience.USERS:
            return users.filter(livefeed_notifications=self) if self.pk else users.none()
        users = users.filter(is_active=True).exclude(pk__in=muted_users(self.category))
        if self.audience == self.Audience.GROUP:
            return users.filter(groups=self.group_id) if self.group_id else users.none()
        return users

    @property
    def translated(self) -> bool:
        """Whether its title or body is a message to translate for each reader."""
        return self.translate_title or self.translate_body

    def shown(self, language: str | None = None) -> tuple[str, str]:
        """Return (title, body) as a reader of language sees them (None: LANGUAGE_CODE)."""
        from livefeed.language import render

        params = self.params or {}
        title = render(self.title, params, language) if self.translate_title else self.title
        body = render(self.body, params, language) if self.translate_body else self.body
        return title, body

    def event_data(
        self,
        unread_count: int | None = None,
        unseen_count: int | None = None,
        *,
        count: int = 1,
        language: str | None = None,
    ) -> dict[str, Any]:
        """Return the `notification` event's data (docs/design.md#contracts); the inbox API reuses it.

        Title and body are in language (None: LANGUAGE_CODE) when they are messages to translate.
        """
        title, body = self.shown(language) if self.translated else (self.title, self.body)
        return {
            "id": self.pk,
            "title": _with_count(title, count),
            "body": _with_count(body, count),
            "level": self.level,
            "url": self.url,
            "created_at": _iso(self.created_at),
            "unread_count": unread_count,
            "unseen_count": unseen_count,
            "data": self.data or {},
            "count": count,
            "group_key": self.group_key or None,
            "actions": self.actions or [],
            "expires_at": _iso(self.expires_at),
            "updated_at": _iso(self.created_at),
            "actor": _actor(self.actor) if self.actor_id else None,
            "category": self.category,
        }


def _with_count(text: str, count: int) -> str:
    # str.replace, not str.format: any other braces in a title stay as written.
    return text.replace("{count}", str(count))


def _actor(user: Any) -> dict[str, Any]:
    name = getattr(user, "get_full_name", lambda: "")() or user.get_username()
    return {"id": user.pk, "name": name, "avatar": _avatar(user)}


def _avatar(user: Any) -> str:
    """Return the URL of the actor's picture from LIVEFEED["AVATAR"], or "" (the widget shows initials)."""
    hook = conf.get("AVATAR")
    if hook is None:
        return ""
    try:
        url = (import_string(hook) if isinstance(hook, str) else hook)(user)
    except Exception:  # a failing hook costs the picture, never the notification
        logger.exception("LIVEFEED['AVATAR'] failed for user %s", user.pk)
        return ""
    return str(url or "")


def _iso(moment: datetime.datetime | None) -> str | None:
    # The same text DjangoJSONEncoder writes ("…T08:00:00.123Z"), so events and inbox agree.
    return None if moment is None else DjangoJSONEncoder().default(moment)


class DeliveryQuerySet(models.QuerySet):
    def inbox(self, user: Any) -> "DeliveryQuerySet":
        """Return user's deliveries in the inbox, last updated first."""
        return self.filter(user=user).listed().order_by("-updated_at", "-notification_id")

    def listed(self) -> "DeliveryQuerySet":
        """Return the deliveries an inbox shows and counts: not archived, snoozed or expired."""
        return self.filter(
            models.Q(expires_at__isnull=True) | models.Q(expires_at__gt=timezone.now()),
            archived_at__isnull=True,
            snoozed_until__isnull=True,
        )

    def counts(self, user_ids: Iterable[Any]) -> dict[Any, dict[str, int]]:
        """Return {user_id: {"unread_count": n, "unseen_count": n}}, in one statement per _PER_USER_BATCH users.

        Every listed() row of these users counts, whatever else filters self.
        In SQL (per_user()): notify() runs it on every send and the inbox on
        every change. Its WHERE is listed()'s, and a test holds the two to the
        same rows.
        """
        result = {pk: {"unread_count": 0, "unseen_count": 0} for pk in user_ids}
        now = connections[self.db].ops.adapt_datetimefield_value(timezone.now())
        rows = per_user(
            self,
            result,
            "COUNT(CASE WHEN read_at IS NULL THEN 1 END), COUNT(CASE WHEN seen_at IS NULL THEN 1 END)",
            "archived_at IS NULL AND snoozed_until IS NULL AND (expires_at IS NULL OR expires_at > %s)",
            [now],
            grouped=True,
        )
        for pk, (unread, unseen) in rows:
            result[pk] = {"unread_count": unread, "unseen_count": unseen}
        return result

    def mark_read(self) -> int:
        """Mark these deliveries read (and so seen) now; return how many changed."""
        now = timezone.now()
        return self.filter(read_at__isnull=True).update(read_at=now, seen_at=Coalesce("seen_at", models.Value(now)))

    def mark_unread(self) -> int:
        """Make these deliveries unread and unseen again (a resend); return how many changed.

        They stop taking folds (fold_key): the user may hold a newer unread one of the key.
        """
        return self.exclude(read_at=None, seen_at=None).update(read_at=None, seen_at=None, fold_key="")

    def mark_seen(self) -> int:
        """Mark these deliveries seen now; return how many changed."""
        return self.filter(seen_at__isnull=True).update(seen_at=timezone.now())

    def archive(self) -> int:
        """Hide these deliveries from the inbox and its counts; return how many changed."""
        return self.filter(archived_at__isnull=True).update(archived_at=timezone.now())

    def fan_out(self, notification: Notification) -> int:
        """Create the rows of a group or everyone notification in one statement; return how many.

        INSERT … SELECT: the database copies the user ids itself, with no
        per-row signals and no Python object per recipient; bulk_create spent
        its time building and compiling model instances (bench/notify_everyone.py,
        docs/performance.md).
        """
        users = notification.audience_users().order_by().values("pk")
        select, params = users.query.get_compiler(using=self.db).as_sql()
        quote = connections[self.db].ops.quote_name
        meta = self.model._meta
        adapt = connections[self.db].ops.adapt_datetimefield_value
        values = {
            "notification": notification.pk,
            "updated_at": adapt(notification.created_at),
            "expires_at": adapt(notification.expires_at),
        }
        columns = ", ".join(quote(str(cast(models.Field, meta.get_field(name)).column)) for name in [*values, "user"])
        placeholders = ", ".join(["%s"] * len(values))
        with connections[self.db].cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {quote(meta.db_table)} ({columns}) SELECT {placeholders}, u.* FROM ({select}) u",
                [*values.values(), *params],
            )
            return cursor.rowcount


class Delivery(models.Model):
    """One notification in one user's inbox, with that user's read state."""

    notification = models.ForeignKey(Notification, models.CASCADE, related_name="deliveries")
    # No index of its own: the unique constraint below starts with user.
    user = models.ForeignKey(settings.AUTH_USER_MODEL, models.CASCADE, related_name="+", db_index=False)
    read_at = models.DateTimeField(null=True, blank=True)
    seen_at = models.DateTimeField(null=True, blank=True)
    archived_at = models.DateTimeField(null=True, blank=True)
    # Per reader, since a group send folds for some readers and not others
    # (livefeed.folding): how many notifications this row stands for, the
    # newest of them (shown; null: the notification itself), when it last
    # changed (the inbox order), and its expiry (the shown one's).
    count = models.PositiveIntegerField(default=1, db_default=1)
    latest = models.ForeignKey(Notification, models.SET_NULL, null=True, blank=True, related_name="+")
    updated_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)
    snoozed_until = models.DateTimeField(null=True, blank=True)
    # The group key while this row takes folds; cleared once it cannot (snoozed,
    # resent), so the unique constraint below only ever holds the open one.
    fold_key = models.CharField(max_length=100, blank=True, default="", db_default="")
    # When it was last emailed (livefeed.digest): due again only once updated_at
    # passes it (a fold after the email), so nothing is emailed twice.
    emailed_at = models.DateTimeField(null=True, blank=True)

    objects = DeliveryQuerySet.as_manager()

    class Meta:
        verbose_name = _("delivery")
        verbose_name_plural = _("deliveries")
        constraints = [
            models.UniqueConstraint(fields=["user", "notification"], name="livefeed_delivery_unique"),
            # At most one unread row per user and group key, even under concurrent
            # notify() calls: the row that later ones fold into.
            models.UniqueConstraint(
                fields=["user", "fold_key"],
                condition=~models.Q(fold_key="") & models.Q(read_at__isnull=True, archived_at__isnull=True),
                name="livefeed_delivery_one_open_fold",
            ),
        ]
        indexes = [
            # A user's unread badge and "unread, newest first" list.
            models.Index(
                fields=["user", "-notification"],
                condition=models.Q(read_at__isnull=True, archived_at__isnull=True),
                name="livefeed_delivery_unread",
            ),
            # The inbox list, last updated first.
            models.Index(
                fields=["user", "-updated_at"],
                condition=models.Q(archived_at__isnull=True),
                name="livefeed_delivery_inbox",
            ),
            # The due job (livefeed.due): snoozes and expiries that have come.
            models.Index(
                fields=["snoozed_until"],
                condition=models.Q(snoozed_until__isnull=False),
                name="livefeed_delivery_snoozed",
            ),
            models.Index(
                fields=["expires_at"],
                condition=models.Q(expires_at__isnull=False, archived_at__isnull=True),
                name="livefeed_delivery_expiring",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.notification_id} → {self.user_id}"

    def event_data(
        self, unread_count: int | None = None, unseen_count: int | None = None, *, language: str | None = None
    ) -> dict[str, Any]:
        """Return this reader's `notification` event data: the newest content under the first one's id."""
        shown = self.latest or self.notification
        data = shown.event_data(unread_count, unseen_count, count=self.count, language=language)
        return data | {
            "id": self.notification_id,
            "created_at": _iso(self.notification.created_at),
            "updated_at": _iso(self.updated_at),
        }

    def item(
        self, unread_count: int | None = None, unseen_count: int | None = None, *, language: str | None = None
    ) -> dict[str, Any]:
        """Return the inbox API's entry: the event data plus this reader's read_at."""
        return self.event_data(unread_count, unseen_count, language=language) | {"read_at": _iso(self.read_at)}


class Preference(models.Model):
    """One user's choices for one category; None keeps the category's default (LIVEFEED["CATEGORIES"]).

    The row with an empty category holds the user's account-wide choice: language.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, models.CASCADE, related_name="livefeed_preferences")
    category = models.CharField(max_length=50, blank=True)
    in_app = models.BooleanField(null=True, blank=True)
    email = models.BooleanField(null=True, blank=True)
    language = models.CharField(max_length=10, blank=True)

    class Meta:
        verbose_name = _("notification preference")
        verbose_name_plural = _("notification preferences")
        constraints = [models.UniqueConstraint(fields=["user", "category"], name="livefeed_preference_unique")]

    def __str__(self) -> str:
        return f"{self.user_id}/{self.category or '*'}"
