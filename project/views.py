from django import forms
from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

import livefeed


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

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user

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
    form = SendForm(request.POST or None, user=request.user, initial={"users": [request.user.pk]})
    if request.method == "POST" and form.is_valid():
        fields = {name: form.cleaned_data[name] for name in ("title", "body", "level", "url")}
        try:
            livefeed.notify(**form.audience_kwargs(), **fields, actor=request.user)
        except ValidationError as error:
            form.add_error(None, error)
        else:
            messages.success(request, f"Sent “{fields['title']}”.")
            return redirect("send")
    return render(request, "send.html", {"form": form})
