"""Notifications in each reader's language (docs/notifications.md#language).

notify(title=gettext_lazy("%(actor)s commented on %(post)s"), params={...})
stores the message (msgid), not a translation; each reader sees it translated
into their language (their preference, else LANGUAGE_CODE) with params filled
in: in the inbox, the live event and the email. Plain strings stay as given.

A group or everyone send is still ONE event on one channel: its stored data
starts with a "translate" key (MARK) holding the msgids and params, and the hub
renders it once per language (and format) among the readers of that process,
so every client, curl included, gets plain data in its reader's language and
the "translate" key never leaves the server. Replay renders the log's copy the
same way. Events without the mark cost one startswith() and nothing else.
"""

import json
import logging
import re
from collections.abc import Collection, Iterable
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.utils import translation
from django.utils.functional import Promise

from livefeed import htmx, sse

if TYPE_CHECKING:
    from livefeed.hub import Reader
    from livefeed.models import Delivery, Notification

__all__ = ["MARK", "encode", "fields", "localize", "marked", "of_user", "of_users", "render", "ui_language"]

logger = logging.getLogger("livefeed")

# A marked event's data begins so: json.dumps keeps the key first (marked()).
MARK = '{"translate":'
# A %-directive of a message: %(name)s, %s, %d, %%…
_DIRECTIVE = re.compile(r"%(\(\w+\))?[-#0 +]*\d*(?:\.\d+)?([a-zA-Z%])")


def fields(title: Any, body: Any, params: Any) -> dict[str, Any]:
    """Return notify()'s title, body and params as model fields.

    Raise ValueError for params without a lazy string or with a missing key,
    TypeError for params that are not a dict of JSON values: a mistake shows
    at the call, not as a broken notification in someone's inbox later.
    """
    lazy = {"title": isinstance(title, Promise), "body": isinstance(body, Promise)}
    if params is not None and not any(lazy.values()):
        raise ValueError("params fill in a lazy title or body: pass gettext_lazy(...), not a plain string.")
    params = {} if params is None else params
    if not isinstance(params, dict):
        raise TypeError(f"params must be a dict, not {type(params).__name__}.")
    try:
        json.dumps(params)
    except (TypeError, ValueError) as error:
        raise TypeError(f"params must hold JSON values (text, numbers, lists, dicts): {error}") from None
    result: dict[str, Any] = {"params": params, "translate_title": lazy["title"], "translate_body": lazy["body"]}
    for name, text in (("title", title), ("body", body)):
        if lazy[name]:
            with translation.override(None):  # no language active: gettext answers the msgid itself
                text = str(text)
            _check(text, params, name)
        result[name] = text
    return result


def _check(text: str, params: dict[str, Any], name: str) -> None:
    if params:
        # "%s" with a dict of params would show the dict itself; translators need the names anyway.
        if any(not named and kind != "%" for named, kind in _DIRECTIVE.findall(text)):
            raise ValueError(f"The {name} {text!r:.80} needs named placeholders with params: %(name)s, not %s.")
        _fill(text, params, name)
        return
    try:
        text % {}  # without params it is never filled in: a placeholder would show raw
    except KeyError as error:
        raise ValueError(f"The {name} {text!r:.80} needs params[{error.args[0]!r}].") from None
    except (TypeError, ValueError):
        pass  # a literal "%", fine in a message that is never filled in


def _fill(text: str, params: dict[str, Any], name: str) -> str:
    if not params:
        return text
    try:
        return text % params
    except KeyError as error:
        raise ValueError(f"The {name} {text!r:.80} needs params[{error.args[0]!r}].") from None
    except (TypeError, ValueError) as error:
        raise ValueError(f"The {name} {text!r:.80} cannot take these params: {error}.") from None


def render(text: str, params: dict[str, Any], language: str | None) -> str:
    """Return a stored msgid translated into language (None: LANGUAGE_CODE), params filled in."""
    if not text:
        return text  # gettext("") is the catalog's header
    with translation.override(language or settings.LANGUAGE_CODE):
        translated = translation.gettext(text)
    try:
        return _fill(translated, params, "translation")
    except ValueError:
        # A catalog whose translation names other keys: the message in its own words beats no message.
        logger.warning("The translation of %r into %s does not take its params; showing the message", text, language)
        return _fill(text, params, "message")


def marked(notification: "Notification", data: dict[str, Any]) -> dict[str, Any]:
    """Return a group or everyone event's data with what the hub needs to translate it, first."""
    spec = {
        "title": notification.title if notification.translate_title else None,
        "body": notification.body if notification.translate_body else None,
        "params": notification.params or {},
    }
    return {"translate": spec} | data


def localize(data: str, language: str | None) -> str:
    """Return a marked event's JSON as a reader of language sees it: translated, the mark gone."""
    from livefeed.models import _with_count

    try:
        payload = json.loads(data)
        spec = payload.pop("translate")
        for name in ("title", "body"):
            if spec.get(name) is not None:
                text = render(spec[name], spec.get("params") or {}, language)
                payload[name] = _with_count(text, payload.get("count") or 1)
        return json.dumps(payload, cls=DjangoJSONEncoder, separators=(",", ":"), ensure_ascii=False)
    except Exception:
        # Never stop the hub's fan-out: a custom event that only looks marked goes out as it came.
        logger.exception("Could not translate a notification event; sending it as stored")
        return data


def encode(data: str, language: str | None, html: bool, id: int | None) -> bytes:
    """Return the SSE bytes of a marked notification event for one reader's language and format."""
    text = localize(data, language)
    return htmx.encode(htmx.EVENT, text, id) if html else sse.encode(text, event=htmx.EVENT, id=id)


def fan_out(readers: Iterable["Reader"], html_readers: Collection["Reader"], message: dict[str, Any]) -> None:
    """Queue a marked notification for readers, rendered once per language and format among them."""
    event_id = message.get("id")
    rendered: dict[tuple[str | None, bool], tuple[int | None, bytes]] = {}
    for reader in readers:
        key = (reader.language, bool(html_readers) and reader in html_readers)
        item = rendered.get(key)
        if item is None:
            item = rendered[key] = (event_id, encode(message["data"], *key, event_id))
        reader.push(item)


def of_user(user: Any) -> str:
    """Return the language a user reads notifications in: their choice, else LANGUAGE_CODE."""
    if not getattr(user, "is_authenticated", False):
        return settings.LANGUAGE_CODE
    return of_users([user.pk]).get(user.pk, settings.LANGUAGE_CODE)


def of_users(user_ids: Iterable[Any]) -> dict[Any, str]:
    """Return {user id: language} of those who chose one, in one query."""
    from livefeed.models import Preference, per_user

    rows = per_user(Preference.objects.all(), user_ids, "language", "category = %s AND language <> %s", ["", ""])
    return {pk: language for pk, (language,) in rows}


def of_rows(rows: list["Delivery"]) -> dict[Any, str]:
    """Return the readers' languages when any of these rows needs one, else {} (no query)."""
    if not any((row.latest or row.notification).translated for row in rows):
        return {}
    return of_users({row.user_id for row in rows})


def ui_language(user: Any) -> str:
    """Return the language of livefeed's own pages and widget: the user's choice, else the active one."""
    chosen = of_users([user.pk]).get(user.pk) if getattr(user, "is_authenticated", False) else None
    return chosen or translation.get_language() or settings.LANGUAGE_CODE
