from collections.abc import Callable
from datetime import timedelta
from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

import livefeed
from livefeed import answers
from project import jobs
from project.answers import stand_in_answer
from project.models import Order


@login_required
def home(request: HttpRequest) -> HttpResponse:
    return render(request, "home.html")


class SendForm(forms.Form):
    AUDIENCES = [("users", "Users"), ("group", "A group"), ("everyone", "Everyone")]
    LEVELS = [(level, level) for level in ("info", "success", "warning", "error")]

    audience = forms.ChoiceField(choices=AUDIENCES, initial="users", widget=forms.RadioSelect)
    users = forms.ModelMultipleChoiceField(get_user_model().objects.order_by("pk"), required=False)
    group = forms.ModelChoiceField(Group.objects.order_by("name"), required=False)
    title = forms.CharField(max_length=200, initial="Hello from livefeed")
    body = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)
    level = forms.ChoiceField(choices=LEVELS, initial="info")
    url = forms.CharField(
        label="Link", max_length=500, required=False, help_text="A path like /admin/ or an https:// URL."
    )
    translated = forms.BooleanField(
        label="Send the translated note instead",
        required=False,
        help_text="Its title “%(actor)s sent you a note” reaches each reader in their language (bob reads French).",
    )

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user

    def described(self, notification_title: str) -> str:
        """Return the message that says what was sent to whom."""
        audience = self.cleaned_data["audience"]
        if audience == "everyone":
            who = f"everyone ({get_user_model().objects.filter(is_active=True).count()} users)"
        elif audience == "group":
            group = self.cleaned_data["group"]
            who = f"the group {group.name} ({group.user_set.count()} members)"
        else:
            who = ", ".join(user.get_username() for user in self.cleaned_data["users"])
        return f"Sent “{notification_title}” to {who}."

    def choice(self) -> str:
        """Return the audience fields as a query string, so the next send starts from them."""
        data = self.cleaned_data
        fields: dict = {"audience": data["audience"]}
        if data["audience"] == "group":
            fields["group"] = data["group"].pk
        elif data["audience"] == "users":
            fields["users"] = [user.pk for user in data["users"]]
        return urlencode(fields, doseq=True)

    def audience_kwargs(self) -> dict:
        """Return notify()'s audience argument for the chosen audience."""
        audience = self.cleaned_data["audience"]
        if audience == "everyone":
            if not self.user.has_perm("livefeed.send_to_everyone"):
                raise ValidationError({"audience": "You may not send to everyone."})
            return {"everyone": True}
        if audience == "group":
            if not self.cleaned_data["group"]:
                raise ValidationError({"group": "Choose a group."})
            return {"group": self.cleaned_data["group"]}
        if not self.cleaned_data["users"]:
            raise ValidationError({"users": "Choose at least one user."})
        return {"recipient": list(self.cleaned_data["users"])}


@staff_member_required
def send(request: HttpRequest) -> HttpResponse:
    """Let staff send a test notification through livefeed.notify()."""
    initial = {"users": [request.user.pk]}
    if "audience" in request.GET:  # the audience of the previous send
        initial = {
            "audience": request.GET["audience"],
            "group": request.GET.get("group"),
            "users": request.GET.getlist("users"),
        }
    form = SendForm(request.POST or None, user=request.user, initial=initial)
    if request.method == "POST" and form.is_valid():
        fields = {name: form.cleaned_data[name] for name in ("title", "body", "level", "url")}
        if form.cleaned_data["translated"]:  # a message each reader sees in their language (docs/notifications.md)
            fields |= {"title": SENT_A_NOTE, "params": {"actor": request.user.get_username()}}
        try:
            livefeed.notify(**form.audience_kwargs(), **fields, actor=request.user)
        except ValidationError as error:
            form.add_error(None, error)
        else:
            messages.success(request, form.described(str(fields["title"])))
            return redirect(f"{reverse('send')}?{form.choice()}")
    return render(request, "send.html", {"form": form})


# Demo: the notification workflow (grouping, actions, expiry) --------------------
# Any signed-in user sends these to themselves from the home page. Their titles
# are lazy: each reader sees them in their language (project/locale has French).

SENT_A_NOTE = gettext_lazy("%(actor)s sent you a note")

_WORKFLOW_DEMOS: dict[str, Callable[[HttpRequest], dict]] = {
    "grouped": lambda request: {
        "title": gettext_lazy("{count} new comments on %(post)s"),
        "params": {"post": "“Q3 plan”"},
        "body": f"The latest at {timezone.localtime():%H:%M:%S}. Send again: this one counts up.",
        "url": "/",
        "group_key": "demo:q3-plan:comments",
    },
    "actions": lambda request: {
        "title": gettext_lazy("Order %(number)s awaits your approval"),
        "params": {"number": 7},
        "body": "Approve posts to the demo with your CSRF token; Open is a plain link.",
        "actions": [
            {"label": "Approve", "url": reverse("workflow_approve"), "method": "post"},
            {"label": "Open", "url": reverse("orders_demo")},
        ],
    },
    "expiring": lambda request: {
        "title": "Flash sale: gone in two minutes",
        "body": "It leaves the inbox, the badge and every open tab when it expires.",
        "level": "warning",
        "expires_at": timezone.now() + timedelta(minutes=2),
    },
}


@login_required
@require_POST
def workflow_send(request: HttpRequest) -> HttpResponse:
    """Send the signed-in user a grouped, an actionable or an expiring notification."""
    demo = _WORKFLOW_DEMOS.get(request.POST.get("kind", ""))
    if demo is None:
        return JsonResponse({"error": "kind must be grouped, actions or expiring."}, status=400)
    livefeed.notify(request.user, **demo(request))
    return redirect("home")


@login_required
@require_POST
def workflow_approve(request: HttpRequest) -> JsonResponse:
    """The target of the demo's "Approve" action: a same-origin POST with the CSRF token."""
    livefeed.notify(
        request.user, title=gettext_lazy("Order %(number)s approved"), params={"number": 7}, level="success"
    )
    return JsonResponse({"approved": True})


# Demos: custom channels, streamed answers and model events ---------------------
# Each page subscribes before it starts its job or answer, so no event can
# arrive before the page listens; the key is chosen by the page for that reason.


@login_required
def job_demo(request: HttpRequest) -> HttpResponse:
    return render(request, "demos/job.html", {"channel_prefix": f"job.{request.user.pk}."})


@login_required
@require_POST
def job_start(request: HttpRequest) -> JsonResponse:
    """Start the demo job whose progress the page follows on job.<user>.<id>."""
    return _started(lambda: jobs.start(request.user, request.POST.get("id", "")))


@login_required
def answer_demo(request: HttpRequest) -> HttpResponse:
    return render(request, "demos/answer.html", {"channel_prefix": f"answer.{request.user.pk}."})


@login_required
@require_POST
def answer_start(request: HttpRequest) -> JsonResponse:
    """Stream the answer on the user's answer channel; the page reads it through the widget."""
    return _started(
        lambda: answers.start_answer(request.user, stand_in_answer(_prompt(request)), key=request.POST.get("key"))
    )


def _started(start: Callable[[], str]) -> JsonResponse:
    """Answer 202 with the channel the started work publishes on, or 400 for bad input."""
    try:
        channel = start()
    except ValueError as error:
        return JsonResponse({"error": str(error)}, status=400)
    return JsonResponse({"channel": channel}, status=202)


@login_required
@require_POST
def answer_stream(request: HttpRequest) -> HttpResponse:
    """Answer as the SSE body of this response, for a page reading it with fetch()."""
    return answers.answer_response(stand_in_answer(_prompt(request)))


def _prompt(request: HttpRequest) -> str:
    return request.POST.get("prompt", "").strip()[:500] or "What are Server-Sent Events?"


@login_required
def htmx_demo(request: HttpRequest) -> HttpResponse:
    return render(request, "demos/htmx.html")


@login_required
def orders_demo(request: HttpRequest) -> HttpResponse:
    return render(request, "demos/orders.html", {"orders": Order.objects.all()[:20]})
