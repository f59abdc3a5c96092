"""Sending notifications from the admin: compose, preview, deliver live.

Saving the add form calls livefeed.notify(), the same path as code. A sent
notification cannot be edited (its readers already have it): resend it instead;
its page shows how many it reached and how many saw and read it.
Sending needs the add permission; sending to everyone also needs
livefeed.send_to_everyone. The form and its preview live in livefeed.compose.
"""

import copy
import json
from typing import Any, cast

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.options import IS_POPUP_VAR
from django.contrib.admin.widgets import AutocompleteSelectMultiple, FilteredSelectMultiple
from django.contrib.auth import get_user_model
from django.db.models import Count, Q, QuerySet, Sum
from django.http import HttpRequest, HttpResponse
from django.template.defaultfilters import truncatechars
from django.utils.formats import date_format
from django.utils.html import format_html
from django.utils.text import get_text_list
from django.utils.timezone import localtime
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

import livefeed
from livefeed.compose import AUDIENCE_FIELDS, NotificationForm, audience_phrase
from livefeed.models import Delivery, Notification
from livefeed.notifications import announce, announce_read

EVERYONE_PERMISSION = "livefeed.send_to_everyone"
SENT_FIELDS = [name for name in NotificationForm.Meta.fields if name != "users"]  # the recipients show in FIGURES
FIGURES = ["delivered", "seen", "read", "archived", "folded"]


class UserSearch(AutocompleteSelectMultiple):
    """The users autocomplete, with a placeholder that says it searches."""

    def build_attrs(self, base_attrs: dict[str, Any], extra_attrs: dict[str, Any] | None = None) -> dict[str, Any]:
        attrs = super().build_attrs(base_attrs, extra_attrs)
        attrs["data-placeholder"] = gettext("Type to search users…")  # select2 shows it in the empty box
        return attrs


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    form = NotificationForm
    add_form_template = "admin/livefeed/notification/compose.html"
    list_display = ["short_title", "level", "audience_label", "read_of_recipients", "folded", "sent_at"]
    list_filter = ["level", "audience", "created_at"]
    search_fields = ["title", "body"]
    ordering = ["-created_at"]
    actions = ["resend", "mark_read_for_all"]

    def get_fieldsets(self, request: HttpRequest, obj: Notification | None = None) -> Any:
        if obj is None:
            return [(None, {"fields": NotificationForm.Meta.fields})]
        return [
            (_("Delivery"), {"fields": [FIGURES]}),
            (None, {"fields": [*SENT_FIELDS, "actor", "created_at"]}),
        ]

    def get_readonly_fields(self, request: HttpRequest, obj: Notification | None = None) -> Any:
        return [] if obj is None else [*FIGURES, "actor", "created_at"]

    def get_form(
        self, request: HttpRequest, obj: Notification | None = None, change: bool = False, **kwargs: Any
    ) -> type[forms.ModelForm]:
        base = super().get_form(request, obj, change, **kwargs)
        may_send_to_everyone = request.user.has_perm(EVERYONE_PERMISSION)
        form = cast(type[forms.ModelForm], type(base.__name__, (base,), {"may_send_to_everyone": may_send_to_everyone}))
        if obj is None:
            # A copy: the declared field is shared by every request's form class.
            users = form.base_fields["users"] = copy.deepcopy(form.base_fields["users"])
            users.widget, users.help_text = self._users_widget(request)
        return form

    def _users_widget(self, request: HttpRequest) -> tuple[forms.Widget, Any]:
        """Return the users picker and its help: search as you type when the user admin allows it."""
        # The autocomplete asks the user admin: it needs its search_fields and the sender's view permission.
        user_admin = self.admin_site._registry.get(get_user_model())
        if user_admin and user_admin.search_fields and user_admin.has_view_permission(request):
            opts = user_admin.model._meta
            names = [str(opts.get_field(name.lstrip("^=@")).verbose_name) for name in user_admin.search_fields]
            return UserSearch(Notification._meta.get_field("recipients"), self.admin_site), _(
                "Type part of a %(fields)s to find people; pick as many as you like."
            ) % {"fields": get_text_list(names, gettext("or"))}
        return FilteredSelectMultiple(_("users"), is_stacked=False), _(
            "Type in the filter box to narrow the list. (Searching as you type needs a user admin with "
            "search_fields and the “view user” permission.)"
        )

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: Any | None = None,
    ) -> HttpResponse:
        if add:
            form = context["adminform"].form
            context |= {"preview": form.preview(), "audience_fields": json.dumps(AUDIENCE_FIELDS)}
        return super().render_change_form(request, context, add, change, form_url, obj)

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

    def response_add(self, request: HttpRequest, obj: Notification, post_url_continue: str | None = None) -> Any:
        """Say whom it went to and how many it reached, then go where the admin goes after adding."""
        if IS_POPUP_VAR in request.POST:
            return super().response_add(request, obj, post_url_continue)
        reached = _figures(obj)["delivered"]
        message = format_html(
            gettext("Sent “{}” to {}."), obj.title, audience_phrase(obj.audience, obj.group, reached, sent=True)
        )
        self.message_user(request, message, messages.SUCCESS)
        return self.response_post_save_add(request, obj)

    @admin.display(description=_("title"), ordering="title")
    def short_title(self, obj: Notification) -> str:
        # Long titles would widen the table past the screen; the full one is on its page.
        title = str(obj)  # a translated one in the admin's language (Notification.__str__)
        return format_html('<span title="{}">{}</span>', title, truncatechars(title, 40))

    @admin.display(description=_("audience"), ordering="audience")
    def audience_label(self, obj: Notification) -> str:
        if obj.audience == Notification.Audience.GROUP:
            return _("group %(name)s") % {"name": obj.group.name if obj.group else "—"}
        return obj.get_audience_display()

    @admin.display(description=_("sent"), ordering="created_at")
    def sent_at(self, obj: Notification) -> str:
        return date_format(localtime(obj.created_at), "SHORT_DATETIME_FORMAT")

    @admin.display(description=_("read"), ordering="recipients_total")
    def read_of_recipients(self, obj: Notification) -> str:
        return f"{cast(Any, obj).read_total} / {cast(Any, obj).recipients_total}"  # annotated by get_queryset

    @admin.display(description=_("delivered to"))
    def delivered(self, obj: Notification) -> int:
        return _figures(obj)["delivered"]

    @admin.display(description=_("seen by"))
    def seen(self, obj: Notification) -> int:
        return _figures(obj)["seen"]

    @admin.display(description=_("read by"))
    def read(self, obj: Notification) -> int:
        return _figures(obj)["read"]

    @admin.display(description=_("archived by"))
    def archived(self, obj: Notification) -> int:
        return _figures(obj)["archived"]

    @admin.display(description=_("folded in"))
    def folded(self, obj: Notification) -> int:
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


def _figures(notification: Notification) -> dict[str, int]:
    """Return how many inbox rows show the notification, and how many of those were seen, read, archived."""
    if not hasattr(notification, "_livefeed_figures"):
        # Folded rows belong to an earlier notification and show this one (livefeed.folding).
        rows = Delivery.objects.filter(Q(notification=notification) | Q(latest=notification))
        vars(notification)["_livefeed_figures"] = rows.aggregate(
            delivered=Count("pk"),
            seen=Count("pk", filter=Q(seen_at__isnull=False)),
            read=Count("pk", filter=Q(read_at__isnull=False)),
            archived=Count("pk", filter=Q(archived_at__isnull=False)),
        )
    return vars(notification)["_livefeed_figures"]
