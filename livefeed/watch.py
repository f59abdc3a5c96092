"""Model events: publish a compact JSON of a model's rows as they are created, updated and deleted.

    livefeed.watch(Order, channel="orders", fields=("status", "total"))

sends `order.created`, `order.updated` and `order.deleted` events with
`{"pk": 7, "status": "paid", "total": "12.50"}` on "orders" once the saving
transaction commits (nothing after a rollback: publish() waits for the commit).
The values are read when the signal fires, so the event shows the row as it
was saved, even if the instance changes before the commit.

Only the pk and the fields named are sent: events go to every reader of the
channel and are stored for replay, so sending every field by default would
ship password hashes and email addresses. An event that cannot be sent (over
MAX_PAYLOAD, a value JSON cannot hold) is logged; the save goes through.
"""

import logging
from collections.abc import Callable, Iterable
from functools import partial
from typing import Any, cast

from django.db.models import Field, Model
from django.db.models.signals import post_delete, post_save
from django.utils.encoding import is_protected_type

from livefeed.channels import validate
from livefeed.publishing import publish

__all__ = ["EVENTS", "unwatch", "watch"]

logger = logging.getLogger("livefeed")

EVENTS = ("created", "updated", "deleted")

Channel = str | Callable[[Any], str]


def watch(
    model: type[Model] | None = None,
    *,
    channel: Channel,
    events: Iterable[str] = EVENTS,
    fields: Iterable[str] | None = None,
) -> Any:
    """Publish model's created/updated/deleted rows on channel (a name, or a function of the row).

    fields names the fields to send besides "pk" (default: none); a foreign
    key sends its id. Watching a model again replaces its settings. Without
    model, return a class decorator: `@livefeed.watch(channel="orders")`.
    """
    if model is None:
        return partial(watch, channel=channel, events=events, fields=fields)
    events = tuple(events)
    unknown = set(events) - set(EVENTS)
    if unknown:
        raise ValueError(f"Unknown model event(s) {sorted(unknown)}: choose from {', '.join(EVENTS)}.")
    if isinstance(channel, str):
        validate(channel)
    names = _field_names(model, fields)
    unwatch(model)
    if {"created", "updated"} & set(events):
        receiver = partial(_saved, channel=channel, events=events, fields=names)
        post_save.connect(receiver, sender=model, weak=False, dispatch_uid=_uid(model, "saved"))
    if "deleted" in events:
        receiver = partial(_deleted, channel=channel, fields=names)
        post_delete.connect(receiver, sender=model, weak=False, dispatch_uid=_uid(model, "deleted"))
    return model


def unwatch(model: type[Model]) -> None:
    """Stop publishing model's events."""
    post_save.disconnect(sender=model, dispatch_uid=_uid(model, "saved"))
    post_delete.disconnect(sender=model, dispatch_uid=_uid(model, "deleted"))


def event_name(model: type[Model], event: str) -> str:
    """Return the SSE event name of a model event: "order.created"."""
    return f"{model._meta.model_name}.{event}"


def _uid(model: type[Model], signal: str) -> str:
    return f"livefeed.watch.{model._meta.label_lower}.{signal}"


def _field_names(model: type[Model], fields: Iterable[str] | None) -> list[str]:
    # Resolved now, so a typo fails at startup instead of on the first save.
    names = list(fields or ())
    for name in names:
        model._meta.get_field(name)  # raises FieldDoesNotExist naming the model
    return names


def _data(instance: Model, fields: list[str]) -> dict[str, Any]:
    meta = instance._meta
    return {"pk": instance.pk, **{name: _value(cast(Field, meta.get_field(name)), instance) for name in fields}}


def _value(field: Field, instance: Model) -> Any:
    # As Django's own serializers do: numbers, dates and None as they are, any
    # other value through its field (a FieldFile becomes its name).
    value = field.value_from_object(instance)
    return value if is_protected_type(value) else field.value_to_string(instance)


def _publish(channel: Channel, instance: Model, event: str, fields: list[str]) -> None:
    # Raising here would fail (or roll back) the model's save over a live event.
    name = event_name(type(instance), event)
    try:
        publish(_channel(channel, instance), name, _data(instance, fields))
    except (TypeError, ValueError) as error:
        logger.error("Not publishing %s of pk %s: %s", name, instance.pk, error)


def _channel(channel: Channel, instance: Model) -> str:
    return channel(instance) if callable(channel) else channel


def _saved(
    sender: type[Model],
    instance: Model,
    created: bool,
    raw: bool = False,
    *,
    channel: Channel,
    events: tuple[str, ...],
    fields: list[str],
    **kwargs: Any,
) -> None:
    event = "created" if created else "updated"
    if raw or event not in events:  # raw: loaddata, where rows may be half-built
        return
    _publish(channel, instance, event, fields)


def _deleted(sender: type[Model], instance: Model, *, channel: Channel, fields: list[str], **kwargs: Any) -> None:
    _publish(channel, instance, "deleted", fields)
