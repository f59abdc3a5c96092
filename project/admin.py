from django.contrib import admin

from project.models import Order


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = ["id", "customer", "item", "quantity", "total", "status", "updated_at"]
    list_editable = ["status"]
    list_filter = ["status"]
