from django.urls import path

from livefeed import health, inbox, pages, preferences, views

app_name = "livefeed"
urlpatterns = [
    path("stream/", views.stream, name="stream"),
    path("health/", health.health, name="health"),
    path("inbox/", pages.inbox, name="inbox"),
    path("api/notifications/", inbox.notification_list, name="notifications"),
    path("api/notifications/read-all/", inbox.mark_all_read, name="read_all"),
    path("api/notifications/seen-all/", inbox.mark_all_seen, name="seen_all"),
    path("api/notifications/<int:pk>/read/", inbox.mark_read, name="read"),
    path("api/notifications/<int:pk>/unread/", inbox.mark_unread, name="unread"),
    path("api/notifications/<int:pk>/archive/", inbox.archive, name="archive"),
    path("api/notifications/<int:pk>/snooze/", inbox.snooze, name="snooze"),
    path("api/preferences/", preferences.api, name="preferences"),
    path("preferences/", preferences.page, name="preferences_page"),
    path("unsubscribe/<str:token>/", preferences.unsubscribe, name="unsubscribe"),
]
