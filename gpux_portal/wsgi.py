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


def settle_heap() -> None:
    """Take what the process loaded so far out of the garbage collector's rounds (``gc.freeze``), after one last
    collection of what loading left behind.

    A web process holds about 235,000 objects once Django, the apps and the URL indexes are loaded; nearly all live
    as long as the process. Python's oldest-generation collection walks every one of them, holding the GIL: 125-165 ms
    on this project's 2-core machine, every few seconds under load, during which none of the process's threads
    answers (seen as clusters of 15 requests all 150-200 ms late, at concurrency 32). Frozen, they are left out: the
    same collections walk about 20,000 objects and take 7-50 ms. Objects made later (per request, per cache entry)
    are collected as before; nothing frozen is ever freed, which is what a module, a class or a URL index needs."""
    import gc

    gc.collect()
    gc.freeze()


warm_up()
settle_heap()
