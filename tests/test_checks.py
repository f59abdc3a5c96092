"""`manage.py check` warns about deployments that would silently break streaming."""

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError


@pytest.mark.django_db
def test_the_demo_settings_pass(settings, capsys):
    settings.DEBUG = True  # the demo's default; pytest-django turns it off
    call_command("check")
    assert "livefeed." not in capsys.readouterr().err


@pytest.mark.django_db
def test_a_broken_setup_fails_manage_py_check(settings):
    settings.CHANNEL_LAYERS = {}
    with pytest.raises(SystemCheckError, match="livefeed.E002"):
        call_command("check")


@pytest.mark.parametrize(
    ("changes", "check_id"),
    [
        ({"INSTALLED_APPS": ["channels", "livefeed"], "ASGI_APPLICATION": None}, "livefeed.W001"),
        ({"CHANNEL_LAYERS": {}}, "livefeed.E002"),
        ({"DEBUG": False}, "livefeed.W003"),
        ({"MIDDLEWARE": ["some.thirdparty.GzipCompressionMiddleware"]}, "livefeed.W004"),
        ({"LIVEFEED": {"HEARTBEAT": 120}}, "livefeed.W005"),
        ({"LIVEFEED": {"REAUTHORIZE_INTERVAL": 300}}, "livefeed.W006"),
        ({"LIVEFEED": {"REAUTHORIZE_INTERVAL": None}}, "livefeed.W006"),
    ],
)
def test_each_risky_setting_gets_its_own_check(settings, changes, check_id):
    settings.DEBUG = True
    for name, value in changes.items():
        setattr(settings, name, value)
    from livefeed import checks

    messages = [
        message
        for check in (
            checks.check_server,
            checks.check_channel_layer,
            checks.check_middleware,
            checks.check_heartbeat,
            checks.check_reauthorize,
        )
        for message in check()
    ]
    assert [m.id for m in messages] == [check_id]
    assert messages[0].hint


@pytest.mark.parametrize(
    "categories",
    [
        ["billing"],
        {"billing": True},
        {"billing": {"emails": True}},
        {"billing": {"email": "yes"}},
        {"x" * 51: {}},
    ],
)
def test_a_malformed_category_is_an_error_naming_it(settings, categories):
    from livefeed import checks

    settings.LIVEFEED = {"CATEGORIES": categories}

    [message] = checks.check_categories()
    assert message.id == "livefeed.E007" and message.hint


def test_the_demo_categories_pass(settings):
    from livefeed import checks
    from project import settings as demo

    settings.LIVEFEED = {"CATEGORIES": demo.LIVEFEED["CATEGORIES"]}

    assert checks.check_categories() == []
