"""Middleware the stream tests put in front of the stream (settings.MIDDLEWARE)."""

from asgiref.sync import markcoroutinefunction
from django.http import HttpResponse

from livefeed.channels import user_channel

calls: list[str] = []


class Tagging:
    """Records each phase and tags the response, as a site's own middleware would."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        calls.append(f"request:{request.user.is_authenticated}")
        if request.GET.get("closed") == "1":
            return HttpResponse("Closed for maintenance", status=503)
        response = self.get_response(request)
        calls.append(f"response:{response.status_code}")
        response["X-Site"] = "tagged"
        return response

    def process_view(self, request, view, args, kwargs):
        calls.append(f"view:{view.__name__}:{user_channel(request.user) if request.user.is_authenticated else ''}")


class AsyncOnly:
    """A middleware that only has an async side, written as Django's docs show."""

    sync_capable = False
    async_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        markcoroutinefunction(self)

    async def __call__(self, request):
        response = await self.get_response(request)
        response["X-Async"] = "yes"
        return response


class _Rewrapping:
    """Puts a generator of its own, wrap(), in place of a streaming response's content."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if response.streaming:
            response.streaming_content = self.wrap(response.streaming_content)
        return response

    def wrap(self, content):
        raise NotImplementedError


class Counting(_Rewrapping):
    """Wraps a streaming response's content, as a site that meters its traffic would."""

    chunks: list[bytes] = []

    async def wrap(self, content):
        async for chunk in content:
            self.chunks.append(chunk)
            yield chunk


class Marking(_Rewrapping):
    """Replaces a stream's content with its own, which marks every chunk: what a client receives tells what it saw."""

    async def wrap(self, content):
        async for chunk in content:
            yield chunk + b": marked\n\n"
