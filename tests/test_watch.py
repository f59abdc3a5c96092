"""Model events: livefeed.watch() publishes rows as they change, after commit only (issue 6)."""

import json
import uuid

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import Group, User
from django.core.exceptions import FieldDoesNotExist
from django.db import connection, models, transaction
from django.test.utils import isolate_apps

import livefeed
from livefeed import channels
from livefeed.models import Event
from tests.streams import Stream, run

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def watched():
    """Watch auth groups on "groups"; each test may watch them again its own way."""
    livefeed.watch(Group, channel="groups", fields=("name",))
    yield
    livefeed.unwatch(Group)


def published():
    return [(e.channel, e.event, json.loads(e.data)) for e in Event.objects.order_by("id")]


def test_create_update_and_delete_reach_a_stream_in_order(alice_session, watched):
    livefeed.register_channel("groups", authorize=lambda user: True)
    session_key = alice_session

    def change_a_group():
        group = Group.objects.create(name="Ops")
        group.name = "Operations"
        group.save()
        pk = group.pk
        group.delete()
        return pk

    async def scenario():
        stream = await Stream("/livefeed/stream/?channel=groups", session_key=session_key).open()
        await stream.connected()
        pk = await sync_to_async(change_a_group)()
        events = await stream.events(3)
        await stream.close()
        return pk, events

    try:
        pk, events = run(scenario)
    finally:
        channels.unregister("groups")
    assert [(e.type, json.loads(e.data)) for e in events] == [
        ("group.created", {"pk": pk, "name": "Ops"}),
        ("group.updated", {"pk": pk, "name": "Operations"}),
        ("group.deleted", {"pk": pk, "name": "Operations"}),
    ]
    assert all(e.last_event_id for e in events)  # stored: a reconnecting page replays them


def test_events_wait_for_the_commit_and_show_the_row_as_saved(watched):
    with transaction.atomic():
        group = Group.objects.create(name="Draft")
        assert published() == []
        group.name = "Changed after the save"  # not saved: not what the event shows
    assert published() == [("groups", "group.created", {"pk": group.pk, "name": "Draft"})]


def test_nothing_is_published_after_a_rollback(watched):
    with pytest.raises(RuntimeError), transaction.atomic():
        Group.objects.create(name="Never")
        raise RuntimeError("roll back")
    kept = Group.objects.create(name="Kept")
    pk = kept.pk  # delete() clears it on the instance, rollback or not
    with pytest.raises(RuntimeError), transaction.atomic():
        kept.delete()
        raise RuntimeError("roll back")
    assert published() == [("groups", "group.created", {"pk": pk, "name": "Kept"})]
    assert Group.objects.filter(pk=pk).exists()


def test_only_the_chosen_events_go_out():
    livefeed.watch(Group, channel="groups", events=("deleted",), fields=())
    try:
        group = Group.objects.create(name="Quiet")
        group.save()
        pk = group.pk
        group.delete()
    finally:
        livefeed.unwatch(Group)
    assert published() == [("groups", "group.deleted", {"pk": pk})]


def test_the_channel_can_depend_on_the_row():
    livefeed.watch(Group, channel=lambda group: f"team.{group.name.lower()}", events=("created",))
    try:
        group = Group.objects.create(name="Red")
    finally:
        livefeed.unwatch(Group)
    assert published() == [("team.red", "group.created", {"pk": group.pk})]


def test_without_fields_only_the_pk_goes_out_never_the_password_hash():
    """Events are stored for replay and go to every reader: a field is sent only when named."""
    livefeed.watch(User, channel="users")
    try:
        user = User.objects.create_user("alice", email="alice@example.com", password="secret")
    finally:
        livefeed.unwatch(User)
    assert published() == [("users", "user.created", {"pk": user.pk})]


def test_each_field_is_serialized_by_its_own_value_to_string_and_a_file_field_still_saves():
    with isolate_apps("tests"):

        class Document(models.Model):
            title = models.CharField(max_length=50)
            attachment = models.FileField(upload_to="docs/")
            token = models.UUIDField(default=uuid.uuid4)
            size = models.IntegerField(default=0)

            class Meta:
                app_label = "tests"

            def __str__(self):
                return self.title

        with connection.schema_editor() as editor:
            editor.create_model(Document)
        livefeed.watch(Document, channel="documents", events=("created",), fields=("attachment", "token", "size"))
        try:
            document = Document._default_manager.create(title="Q3", attachment="docs/q3.pdf", size=12)
        finally:
            livefeed.unwatch(Document)
            with connection.schema_editor() as editor:
                editor.delete_model(Document)
    data = {"pk": document.pk, "attachment": "docs/q3.pdf", "token": str(document.token), "size": 12}
    assert published() == [("documents", "document.created", data)]


def test_an_oversized_event_is_logged_and_the_save_goes_through(settings, caplog):
    settings.LIVEFEED = {"MAX_PAYLOAD": 100}
    livefeed.watch(Group, channel="groups", fields=("name",))
    try:
        group = Group.objects.create(name="x" * 150)
    finally:
        livefeed.unwatch(Group)
    assert Group.objects.filter(pk=group.pk).exists()
    assert published() == []
    assert "group.created" in caplog.text and "MAX_PAYLOAD" in caplog.text


def test_foreign_keys_send_their_id_and_values_become_json():
    user = User.objects.create_user("alice", password="x")
    livefeed.watch(User, channel="users", events=("updated",), fields=("username", "last_login", "is_staff"))
    try:
        user.is_staff = True
        user.save()
    finally:
        livefeed.unwatch(User)
    ((channel, event, data),) = published()
    assert (channel, event, data) == (
        "users",
        "user.updated",
        {"pk": user.pk, "username": "alice", "last_login": None, "is_staff": True},
    )


def test_unwatch_stops_the_events():
    livefeed.watch(Group, channel="groups", fields=("name",))
    livefeed.unwatch(Group)
    Group.objects.create(name="Silent")
    assert published() == []


def test_mistakes_fail_when_watching_not_on_the_first_save():
    with pytest.raises(FieldDoesNotExist):
        livefeed.watch(Group, channel="groups", fields=("nmae",))
    with pytest.raises(ValueError, match="created, updated, deleted"):
        livefeed.watch(Group, channel="groups", events=("saved",))
    with pytest.raises(ValueError, match="Invalid channel"):
        livefeed.watch(Group, channel="no spaces")


def test_watch_works_as_a_class_decorator():
    assert livefeed.watch(channel="groups", events=("created",), fields=("name",))(Group) is Group
    try:
        group = Group.objects.create(name="Decorated")
    finally:
        livefeed.unwatch(Group)
    assert published() == [("groups", "group.created", {"pk": group.pk, "name": "Decorated"})]
