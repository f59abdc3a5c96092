from django.apps import AppConfig


class ProjectConfig(AppConfig):
    name = "project"
    verbose_name = "Demo site"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        import livefeed
        from project import jobs, mailer
        from project.models import Order

        # /demos/job/: each user reads the progress of their own jobs only.
        livefeed.register_channel(jobs.PATTERN, authorize=jobs.authorize)
        # /demos/orders/: every signed-in user sees the orders table change live.
        livefeed.register_channel("orders", authorize=lambda user: user.is_authenticated)
        livefeed.watch(Order, channel="orders", fields=("customer", "item", "quantity", "total", "status"))
        # Email digests of what stays unread (printed on the console unless EMAIL_HOST is set).
        mailer.start_if_serving()
