from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.contrib.staticfiles.urls import staticfiles_urlpatterns
from django.urls import include, path

from livefeed import metrics
from project import views

urlpatterns = [
    path("", views.home, name="home"),
    path("send/", views.send, name="send"),
    path("demos/workflow/send/", views.workflow_send, name="workflow_send"),
    path("demos/workflow/approve/", views.workflow_approve, name="workflow_approve"),
    path("demos/job/", views.job_demo, name="job_demo"),
    path("demos/job/start/", views.job_start, name="job_start"),
    path("demos/answer/", views.answer_demo, name="answer_demo"),
    path("demos/answer/start/", views.answer_start, name="answer_start"),
    path("demos/answer/stream/", views.answer_stream, name="answer_stream"),
    path("demos/orders/", views.orders_demo, name="orders_demo"),
    path("demos/htmx/", views.htmx_demo, name="htmx_demo"),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("livefeed/", include("livefeed.urls")),
    # Prometheus metrics of this process; a real site serves them to its scraper only (docs/deploy.md).
    path("metrics/", metrics.view, name="metrics"),
]
# Plain `daphne project.asgi:application` (the browser tests) serves no static
# files by itself; with DEBUG on, Django does. Empty when DEBUG is off.
urlpatterns += staticfiles_urlpatterns()
