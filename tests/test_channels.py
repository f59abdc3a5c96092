"""Custom channels: a registered pattern decides who may open a stream on them (issue 6)."""

import json

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User

import livefeed
from livefeed import answers, channels, hub
from tests.streams import Stream, run, session_for

pytestmark = pytest.mark.django_db(transaction=True)

# Who may read which job: the checks below look these up.
OWNERS = {"42": "alice", "43": "bob"}


def owns_job(user, id):
    return OWNERS.get(id) == user.username


async def owns_job_async(user, id):
    return OWNERS.get(id) == user.username


def same_team(user, team, id):
    return team == f"team{user.pk}" and id.isdigit()


@pytest.fixture(params=[owns_job, owns_job_async], ids=["sync", "async"])
def job_channels(request, monkeypatch):
    # Only this pattern: the demo's "job.{owner}.{id}" would otherwise decide
    # "job.42.extra" by whether the test user's pk happens to be 42.
    monkeypatch.setattr(channels, "_patterns", {})
    livefeed.register_channel("job.{id}", authorize=request.param)
    yield


def open_stream(session_key, *names):
    query = "&".join(f"channel={name}" for name in names)

    async def scenario():
        stream = await Stream(f"/livefeed/stream/?{query}", session_key=session_key).open()
        body = await stream.json() if stream.status != 200 else None
        if stream.status == 200:
            await stream.close()
        return stream.status, body

    return run(scenario)


def test_the_owner_reads_a_job_channel_and_gets_its_events(alice_session, job_channels):
    async def scenario():
        stream = Stream("/livefeed/stream/?channel=job.42", session_key=alice_session)
        events = await stream.receive_one("job.42", "progress", {"percent": 50})
        return stream.status, events

    status, events = run(scenario)
    assert status == 200
    assert (events[0].type, json.loads(events[0].data)) == ("progress", {"percent": 50})


def test_another_users_job_is_refused_before_any_stream_opens(alice_session, job_channels):
    status, body = open_stream(alice_session, "job.43")
    assert status == 403
    assert "job.43" in body["error"]
    assert hub._hubs == {} or not next(iter(hub._hubs.values())).streams


def test_one_refused_channel_refuses_the_whole_stream(alice_session, job_channels):
    assert open_stream(alice_session, "job.42", "job.43")[0] == 403


@pytest.mark.parametrize("name", ["job.44", "job", "job.42.extra", "jobs.42", "unknown"])
def test_unknown_channels_and_names_outside_the_pattern_are_refused(alice_session, job_channels, name):
    assert open_stream(alice_session, name)[0] == 403


def test_every_part_of_a_pattern_reaches_the_check(alice, alice_session):
    livefeed.register_channel("report.{team}.{id}", authorize=same_team)
    try:
        assert open_stream(alice_session, f"report.team{alice.pk}.7")[0] == 200
        assert open_stream(alice_session, f"report.team{alice.pk + 1}.7")[0] == 403
        assert open_stream(alice_session, f"report.team{alice.pk}.seven")[0] == 403
    finally:
        channels.unregister("report.{team}.{id}")


def test_registering_a_pattern_again_replaces_its_check(alice_session):
    livefeed.register_channel("room.{name}", authorize=lambda user, name: True)

    @livefeed.register_channel("room.{name}")
    def lobby_only(user, name):
        return name == "lobby"

    try:
        assert open_stream(alice_session, "room.lobby")[0] == 200
        assert open_stream(alice_session, "room.kitchen")[0] == 403
    finally:
        channels.unregister("room.{name}")


def test_anonymous_users_are_asked_to_sign_in_first(job_channels):
    async def scenario():
        stream = await Stream("/livefeed/stream/?channel=job.42").open()
        return stream.status

    assert run(scenario) == 401


def test_ephemeral_events_go_live_without_an_id_and_are_never_replayed(alice_session, job_channels):
    def ticks():
        livefeed.publish("job.42", "tick", {"n": 1}, store=False)
        livefeed.publish("job.42", "progress", {"percent": 10})

    async def scenario():
        live = await Stream("/livefeed/stream/?channel=job.42", session_key=alice_session).open()
        await live.connected()
        await sync_to_async(ticks)()
        events = await live.events(2)
        await live.close()
        # Resume from just before both: the stored event comes back, the tick does not.
        before = int(events[1].last_event_id) - 1
        resumed = await Stream(
            f"/livefeed/stream/?channel=job.42&lastEventId={before}", session_key=alice_session
        ).open()
        await resumed.connected()
        await sync_to_async(livefeed.publish)("job.42", "progress", {"percent": 20})
        replayed = await resumed.events(2)
        await resumed.close()
        return events, replayed

    events, replayed = run(scenario)
    assert [e.type for e in events] == ["tick", "progress"]
    assert (events[0].last_event_id, bool(events[1].last_event_id)) == ("", True)
    assert [json.loads(e.data) for e in replayed] == [{"percent": 10}, {"percent": 20}]  # no tick


def test_the_most_specific_pattern_decides_whatever_the_registration_order(monkeypatch):
    """A broad pattern registered first must not open the answer channels of other users."""
    monkeypatch.setattr(channels, "_patterns", {})
    carol, dave = User.objects.create_user("carol", password="x"), User.objects.create_user("dave", password="x")
    key = session_for(carol)
    livefeed.register_channel("{kind}.{owner}.{key}", authorize=lambda user, kind, owner, key: True)
    livefeed.register_channel("job.{id}", authorize=lambda user, id: False)
    livefeed.register_channel("job.lobby", authorize=lambda user: True)
    livefeed.register_channel(answers.PATTERN, answers.authorize)
    assert open_stream(key, f"answer.{dave.pk}.k1")[0] == 403  # answer.{owner}.{key} decides
    assert open_stream(key, f"answer.{carol.pk}.k1")[0] == 200
    assert open_stream(key, "report.7.k1")[0] == 200  # only the broad one matches
    assert open_stream(key, "job.lobby")[0] == 200  # an exact name beats job.{id}
    assert open_stream(key, "job.7")[0] == 403


@pytest.mark.parametrize(
    ("general", "specific"),
    [
        ("{a}.{b}", "answer.{b}"),
        ("job.{id}", "job.lobby"),
        ("job.{id}", "job.x{id}"),
        ("job.x{id}", "job.xy{id}"),
        ("{a}.lobby", "job.{b}"),  # the leftmost difference decides
    ],
)
def test_specificity_ranks_literal_over_mixed_over_bare_parts(general, specific):
    assert channels.specificity(specific) > channels.specificity(general)


def test_equally_specific_patterns_that_both_match_deny(monkeypatch):
    monkeypatch.setattr(channels, "_patterns", {})
    key = session_for(User.objects.create_user("carol", password="x"))
    livefeed.register_channel("room.a{x}", authorize=lambda user, x: True)
    livefeed.register_channel("room.{x}b", authorize=lambda user, x: True)
    assert open_stream(key, "room.a1")[0] == 200
    assert open_stream(key, "room.a1b")[0] == 403  # neither may decide alone


def test_a_user_model_without_groups_reads_its_own_channels():
    """A custom user model without PermissionsMixin has no groups: its streams still open."""
    from types import SimpleNamespace

    from livefeed.models import Event

    user = SimpleNamespace(is_authenticated=True, pk=5, _meta=Event._meta)  # a model with no "groups" field

    assert channels.default_channels(user) == ["user.5", "users", "broadcast"]
