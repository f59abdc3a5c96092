"""Migrations that change existing rows: an upgrade keeps every inbox as it was."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

pytestmark = pytest.mark.django_db(transaction=True)


def migrate(target):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate([("livefeed", target)])
    return executor.loader.project_state(("livefeed", target)).apps


@pytest.fixture(autouse=True)
def _back_to_the_latest():
    """Leave the schema as the other tests expect it, whatever migrations come after these."""
    yield
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())


def test_0004_workflow_dates_existing_rows_when_they_were_sent():
    old = migrate("0002_notifications")
    user = old.get_model("auth", "User").objects.create(username="alice")
    Notification = old.get_model("livefeed", "Notification")
    first = Notification.objects.create(title="first")
    second = Notification.objects.create(title="second")
    Delivery = old.get_model("livefeed", "Delivery")
    for notification in (second, first):  # ids in another order than the times
        Delivery.objects.create(notification=notification, user=user)

    new = migrate("0004_workflow")

    rows = new.get_model("livefeed", "Delivery").objects.order_by("-updated_at")
    assert [(row.notification.title, row.updated_at, row.count, row.fold_key) for row in rows] == [
        ("second", second.created_at, 1, ""),
        ("first", first.created_at, 1, ""),
    ]
