"""Sending notifications from the admin: compose, preview, deliver live.

Saving the add form calls livefeed.notify(), the same path as code. A sent
notification cannot be edited (its readers already have it): resend it instead.
Sending needs the add permission; sending to everyone also needs
livefeed.send_to_everyone.
"""

from collections.abc import Iterable
from typing import Any, cast

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.widgets import AutocompleteSelectMultiple, FilteredSelectMultiple
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db.models import Count, Q, QuerySet, Sum
from django.http import HttpRequest
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.timezone import localtime
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

import livefeed
from livefeed.actions import clean_actions as checked_actions
from livefeed.categories import GENERAL, category_choices
from livefeed.models import Delivery, Notification
from livefeed.notifications import announce, announce_read

EVERYONE_PERMISSION = "livefeed.send_to_everyone"
_COLOURS = {"info": "#2563eb", "success": "#16a34a", "warning": "#d97706", "error": "#dc2626"}


class NotificationForm(forms.ModelForm):
    users: forms.ModelMultipleChoiceField = forms.ModelMultipleChoiceField(
        queryset=None, required=False, label=_("Users")
    )
    preview = forms.BooleanField(
        required=False,
        label=_("Preview only"),
        help_text=_("Show how it looks and how many people get it; nothing is sent."),
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
        users = cast(forms.ModelMultipleChoiceField, self.fields["users"])
        users.queryset = get_user_model()._default_manager.filter(is_active=True)
        if "audience" in self.fields and not self.may_send_to_everyone:
            audience = cast(forms.ChoiceField, self.fields["audience"])
            choices: list[Any] = list(cast(Iterable[Any], audience.choices))
            audience.choices = [choice for choice in choices if choice[0] != Notification.Audience.EVERYONE]

    def clean_actions(self) -> list[dict[str, str]]:
        try:
            return checked_actions(self.cleaned_data.get("actions"))
        except ValueError as error:
            raise ValidationError(str(error), code="invalid_actions") from None

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        audience = data.get("audience")
        if audience == Notification.Audience.USERS and not data.get("users"):
            self.add_error("users", _("Choose at least one user."))
        if audience == Notification.Audience.GROUP and not data.get("group"):
            self.add_error("group", _("Choose a group."))
        if data.get("preview") and not self.errors:
            # A form error keeps everything on the page and saves nothing; it is safe HTML
            # built with format_html, so the admin shows the preview at the top.
            raise ValidationError(self._preview(data))
        return data

    def _preview(self, data: dict[str, Any]) -> str:
        draft = Notification(audience=data["audience"], group=data.get("group"))
        count = len(data["users"]) if draft.audience == Notification.Audience.USERS else draft.audience_users().count()
        link = format_html('<p><a href="{0}">{0}</a></p>', data["url"]) if data.get("url") else ""
        shown = Notification(title=data.get("title", ""), body=data.get("body", "")).event_data()  # {count} as 1
        return format_html(
            "<p>{}</p>"
            '<div style="border-left:4px solid {};padding:.25em 1em;max-width:40em;background:#fff;color:#111">'
            "<strong>{}</strong><p>{}</p>{}{}</div><p>{}</p>{}",
            _("Not sent yet: check the preview, untick “Preview only” and save to send."),
            _COLOURS.get(data.get("level", ""), "#888"),
            shown["title"],
            shown["body"],
            link,
            _preview_actions(data.get("actions") or []),
            ngettext("Goes to %(count)d person.", "Goes to %(count)d people.", count) % {"count": count},
            _preview_workflow(data),
        )


def _preview_actions(actions: list[dict[str, str]]) -> str:
    buttons = format_html_join(
        " ",
        '<button type="button" disabled title="{} {}">{}</button>',
        ((a["method"].upper(), a["url"], a["label"]) for a in actions),
    )
    return format_html("<p>{}</p>", buttons) if actions else ""


def _preview_workflow(data: dict[str, Any]) -> str:
    lines = []
    if data.get("group_key"):
        lines.append(
            _("Folds into each reader's unread notification with the key “%(key)s”.") % {"key": data["group_key"]}
        )
    if data.get("expires_at"):
        lines.append(
            _("Leaves every inbox at %(time)s.")
            % {"time": date_format(localtime(data["expires_at"]), "DATETIME_FORMAT")}
        )
    return format_html_join("", "<p>{}</p>", ((line,) for line in lines))


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    form = NotificationForm
    list_display = ["title", "level", "audience_label", "recipient_count", "read_count", "folded_count", "created_at"]
    list_filter = ["level", "audience", "created_at"]
    search_fields = ["title", "body"]
    ordering = ["-created_at"]
    actions = ["resend", "mark_read_for_all"]
    readonly_fields = ["actor", "created_at"]

    def get_fields(self, request: HttpRequest, obj: Notification | None = None) -> Any:
        if obj is None:
            return [*NotificationForm.Meta.fields, "preview"]
        return [
            *("audience", "group", "title", "body", "level", "url", "data"),
            *("group_key", "actions", "expires_at", "actor", "created_at"),
        ]

    def get_form(
        self, request: HttpRequest, obj: Notification | None = None, change: bool = False, **kwargs: Any
    ) -> type[forms.ModelForm]:
        base = super().get_form(request, obj, change, **kwargs)
        may_send_to_everyone = request.user.has_perm(EVERYONE_PERMISSION)
        form = cast(type[forms.ModelForm], type(base.__name__, (base,), {"may_send_to_everyone": may_send_to_everyone}))
        if obj is None:
            form.base_fields["users"].widget = self._users_widget(form.base_fields["users"].widget)
        return form

    def _users_widget(self, default: forms.Widget) -> forms.Widget:
        # Autocomplete scales to any number of users, but needs a user admin with search_fields.
        user_admin = self.admin_site._registry.get(get_user_model())
        if user_admin and user_admin.search_fields:
            return AutocompleteSelectMultiple(Notification._meta.get_field("recipients"), self.admin_site)
        return FilteredSelectMultiple(_("users"), is_stacked=False)

    def has_change_permission(self, request: HttpRequest, obj: Notification | None = None) -> bool:
        return False

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return (
            super()
            .get_queryset(request)
            .select_related("group")
            .annotate(
                recipients_total=Count("deliveries"),
                read_total=Count("deliveries", filter=Q(deliveries__read_at__isnull=False)),
                folded_total=Sum("deliveries__count", default=0) - Count("deliveries"),
            )
        )

    def save_model(self, request: HttpRequest, obj: Notification, form: forms.Form, change: bool) -> None:
        """Send through livefeed.notify(), then let the admin carry on with the saved row."""
        audiences: dict[str, dict[str, Any]] = {
            Notification.Audience.USERS: {"recipient": form.cleaned_data.get("users")},
            Notification.Audience.GROUP: {"group": obj.group},
            Notification.Audience.EVERYONE: {"everyone": True},
        }
        sent = livefeed.notify(
            **audiences[obj.audience],
            title=obj.title,
            body=obj.body,
            level=obj.level,
            url=obj.url,
            data=obj.data,
            actor=request.user,
            group_key=obj.group_key or None,
            actions=obj.actions,
            expires_at=obj.expires_at,
            category=obj.category,
        )
        vars(obj).update(vars(sent))  # the admin's log entry and redirect use this instance

    @admin.display(description=_("audience"), ordering="audience")
    def audience_label(self, obj: Notification) -> str:
        if obj.audience == Notification.Audience.GROUP:
            return _("group %(name)s") % {"name": obj.group.name if obj.group else "—"}
        return obj.get_audience_display()

    @admin.display(description=_("recipients"), ordering="recipients_total")
    def recipient_count(self, obj: Notification) -> int:
        return cast(Any, obj).recipients_total  # annotated by get_queryset

    @admin.display(description=_("read"), ordering="read_total")
    def read_count(self, obj: Notification) -> int:
        return cast(Any, obj).read_total

    @admin.display(description=_("folded in"), ordering="folded_total")
    def folded_count(self, obj: Notification) -> int:
        """Later notifications of its group key that folded into its readers' rows."""
        return cast(Any, obj).folded_total

    @admin.action(description=_("Resend selected notifications as unread"), permissions=["add"])
    def resend(self, request: HttpRequest, queryset: QuerySet) -> None:
        sent = 0
        for notification in queryset:
            if notification.audience == Notification.Audience.EVERYONE and not request.user.has_perm(
                EVERYONE_PERMISSION
            ):
                self.message_user(
                    request,
                    _("Skipped “%s”: sending to everyone needs its own permission.") % notification,
                    messages.WARNING,
                )
                continue
            notification.deliveries.mark_unread()
            announce(notification)
            sent += 1
        self.message_user(request, ngettext("Resent %d notification.", "Resent %d notifications.", sent) % sent)

    @admin.action(description=_("Mark selected notifications read for all recipients"), permissions=["add"])
    def mark_read_for_all(self, request: HttpRequest, queryset: QuerySet) -> None:
        changed = Delivery.objects.filter(notification__in=queryset).mark_read()
        for notification in queryset:
            announce_read(notification)
        self.message_user(
            request, ngettext("Marked %d delivery read.", "Marked %d deliveries read.", changed) % changed
        )
