"""The admin's compose form: one audience's fields, JSON with help, and a preview of what readers see.

A valid form with "_preview" in its data is not saved (is_valid() is False) yet
has no errors, so the admin shows it again with the preview and no error box.
"""

import json
from dataclasses import dataclass, field
from typing import Any, cast

from django import forms
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.utils.formats import date_format
from django.utils.timezone import localtime
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from livefeed.actions import clean_actions as checked_actions
from livefeed.categories import GENERAL, category_choices
from livefeed.models import Notification

PREVIEW = "_preview"  # the name of the Preview button
Audience = Notification.Audience
# The fields that belong to one audience: the page shows only the chosen one's, and the
# server refuses them filled in under another (admin-compose.js reads this map).
AUDIENCE_FIELDS: dict[str, list[str]] = {Audience.USERS: ["users"], Audience.GROUP: ["group"], Audience.EVERYONE: []}
DATA_EXAMPLE = '{"build": 128, "branch": "main"}'
ACTIONS_EXAMPLE = '[{"label": "Approve", "url": "/orders/7/approve/", "method": "post"}]'


class JSONInput(forms.JSONField):
    """A JSON field shown empty when empty, that names the JSON it wants when given other."""

    def __init__(self, kind: type, example: str, **kwargs: Any) -> None:
        self.kind, self.example = kind, example
        kwargs.setdefault("widget", forms.Textarea(attrs={"rows": 2, "placeholder": example}))
        super().__init__(required=False, **kwargs)

    def prepare_value(self, value: Any) -> Any:
        return "" if value is None or isinstance(value, dict | list) and not value else super().prepare_value(value)

    def to_python(self, value: Any) -> Any:
        if value in self.empty_values:
            return self.kind()
        try:
            converted = json.loads(value)
        except json.JSONDecodeError as error:
            message = _("This is not valid JSON (%(reason)s at character %(at)d). For example: %(example)s")
            params = {"reason": error.msg, "at": error.pos + 1, "example": self.example}
            raise ValidationError(message, code="invalid", params=params) from None
        if not isinstance(converted, self.kind):
            wanted = _("an object {…}") if self.kind is dict else _("a list […]")
            message = _("Enter %(wanted)s, for example: %(example)s")
            raise ValidationError(message, code="invalid", params={"wanted": wanted, "example": self.example})
        return converted


@dataclass
class Preview:
    """What the preview shows: the event's fields as a reader's widget gets them, and who gets it."""

    shown: dict[str, Any]
    level_label: str
    recipients: int
    send_label: str
    notes: list[str] = field(default_factory=list)


class NotificationForm(forms.ModelForm):
    users: forms.ModelMultipleChoiceField = forms.ModelMultipleChoiceField(
        queryset=None, required=False, label=_("Users")
    )
    may_send_to_everyone = False  # set per request by NotificationAdmin.get_form
    # The configured categories, read per form (livefeed.categories).
    category = forms.TypedChoiceField(
        label=_("Category"), choices=category_choices, initial=GENERAL, required=False, empty_value=GENERAL
    )

    class Meta:
        model = Notification
        fields = [
            "audience",
            "users",
            "group",
            "title",
            "body",
            "level",
            "url",
            "data",
            "group_key",
            "actions",
            "expires_at",
            "category",
        ]
        widgets = {"audience": forms.RadioSelect}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Set here, not declared: a form attribute named "data" would hide the form's bound data.
        self.fields["data"] = JSONInput(
            dict,
            DATA_EXAMPLE,
            label=_("Data"),
            help_text=_("JSON object, sent to the page as `data` (optional). For example: %s") % DATA_EXAMPLE,
        )
        self.fields["actions"] = JSONInput(
            list,
            ACTIONS_EXAMPLE,
            label=_("Actions"),
            help_text=_("Up to 3 buttons (optional). For example: %s") % ACTIONS_EXAMPLE,
        )
        users = cast(forms.ModelMultipleChoiceField, self.fields["users"])
        users.queryset = get_user_model()._default_manager.filter(is_active=True)
        if "audience" in self.fields and not self.may_send_to_everyone:
            audience = cast(forms.ChoiceField, self.fields["audience"])
            audience.choices = [c for c in cast(list[Any], audience.choices) if c[0] != Audience.EVERYONE]

    @property
    def previewing(self) -> bool:
        return self.is_bound and PREVIEW in self.data

    def is_valid(self) -> bool:
        """Return False for a valid preview too: the admin then shows it again, unsaved and without errors."""
        return super().is_valid() and not self.previewing

    def clean_actions(self) -> list[dict[str, str]]:
        try:
            return checked_actions(self.cleaned_data.get("actions"))
        except ValueError as error:
            raise ValidationError(str(error), code="invalid_actions") from None

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        audience = data.get("audience")
        if audience == Audience.USERS and not data.get("users"):
            self.add_error("users", _("Choose at least one user."))
        if audience == Audience.GROUP and not data.get("group"):
            self.add_error("group", _("Choose a group."))
        for chosen, names in AUDIENCE_FIELDS.items():
            for name in names:
                if audience and chosen != audience and data.get(name):
                    label = Audience(chosen).label
                    message = _("This is only for the audience “%(audience)s”: clear it, or choose that audience.")
                    self.add_error(name, ValidationError(message, code="other_audience", params={"audience": label}))
        return data

    def preview(self) -> Preview | None:
        """Return the preview of a valid form sent with the Preview button, else None."""
        if not self.previewing or self.errors:
            return None
        data = self.cleaned_data
        recipients = recipient_count(data["audience"], data.get("users"), data.get("group"))
        draft = Notification(**{name: data.get(name) for name in ("title", "body", "level", "url", "actions")})
        return Preview(
            shown=draft.event_data(),  # {count} as 1, as a first notification shows it
            level_label=str(Notification.Level(draft.level).label).capitalize(),
            recipients=recipients,
            send_label=gettext("Send to %s") % audience_phrase(data["audience"], data.get("group"), recipients),
            notes=_workflow_notes(data),
        )


def recipient_count(audience: str, users: Any, group: Any) -> int:
    """Return how many people a send to this audience reaches now."""
    if audience == Audience.USERS:
        return len(users or [])
    return Notification(audience=audience, group=group).audience_users().count()


def audience_phrase(audience: str, group: Any, count: int, *, sent: bool = False) -> str:
    """Return "3 users", "group Ops (4 members)" (after sending: "the group …") or "everyone (12 users)"."""
    users = ngettext("%(count)d user", "%(count)d users", count) % {"count": count}
    if audience == Audience.GROUP:
        members = ngettext("%(count)d member", "%(count)d members", count) % {"count": count}
        phrase = gettext("the group %(name)s (%(members)s)") if sent else gettext("group %(name)s (%(members)s)")
        return phrase % {"name": group.name if group else "—", "members": members}
    if audience == Audience.EVERYONE:
        return gettext("everyone (%(users)s)") % {"users": users}
    return users


def _workflow_notes(data: dict[str, Any]) -> list[str]:
    notes = []
    if data.get("group_key"):
        notes.append(
            gettext("Folds into each reader's unread notification with the key “%(key)s”.") % {"key": data["group_key"]}
        )
    if data.get("expires_at"):
        when = date_format(localtime(data["expires_at"]), "DATETIME_FORMAT")
        notes.append(gettext("Leaves every inbox at %(time)s.") % {"time": when})
    return notes
