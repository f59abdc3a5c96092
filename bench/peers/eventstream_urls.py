"""The django-eventstream peer's one route, and who reads which channel.

GET /events/ streams "broadcast" and the signed-in user's own "user-<pk>": its
README's route (`include(django_eventstream.urls)`) with a channel manager that
picks the channels from the session's user, as it suggests when view keywords
cannot name them.
"""

import django_eventstream
from django.urls import include, path
from django_eventstream.channelmanager import DefaultChannelManager

BROADCAST = "broadcast"


def user_channel(pk: int) -> str:
    return f"user-{pk}"


class UserChannelManager(DefaultChannelManager):
    def get_channels_for_request(self, request, view_kwargs):
        user = request.user  # the session and user queries: part of every connect
        return {BROADCAST, user_channel(user.pk)} if user.is_authenticated else {BROADCAST}

    def can_read_channel(self, user, channel):
        return user is not None and channel in {BROADCAST, user_channel(user.pk)}


urlpatterns = [path("events/", include(django_eventstream.urls))]
