from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gpux_portal.settings")
application = get_wsgi_application()


def warm_up() -> None:
    """Import the URL configuration and build its reverse indexes now, once per process, before requests arrive.

    Django does both lazily, on the first request that resolves or reverses a URL, and the reverse indexes have no
    lock: under a threaded worker, every thread that meets an unbuilt index builds its own copy at once (seen in
    profiles of the first seconds of load: the importing of every app's views, then one index per thread). Built
    here, each worker's first requests cost what its later ones do."""
    from django.urls import URLResolver, get_resolver

    def walk(resolver: URLResolver, seen: set[int]) -> None:
        if id(resolver) in seen:
            return
        seen.add(id(resolver))
        resolver.reverse_dict  # noqa: B018 - building the index is the point
        resolver.app_dict  # noqa: B018
        for _prefix, child in resolver.namespace_dict.values():
            walk(child, seen)

    walk(get_resolver(), set())


warm_up()
