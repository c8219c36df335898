"""The WSGI module leaves what a web process loaded out of the garbage collector's rounds (``gc.freeze`` in
gpux_portal/wsgi.py): its oldest-generation collections walked some 235,000 long-lived objects and held the GIL for
125-165 ms on this machine, stalling every thread of the process. Checked in a fresh interpreter, as a gunicorn
worker loads it; what is made afterwards is still collected."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from django.conf import settings

PROBE = """
import gc, json
import gpux_portal.wsgi  # noqa: F401 - loading it is the point
frozen, tracked = gc.get_freeze_count(), len(gc.get_objects())

class Node:
    pass

def cycle():
    first, second = Node(), Node()
    first.other, second.other = second, first

gc.disable()  # the cycles wait for the collection below, not for an automatic one
for _ in range(1000):
    cycle()
collected = gc.collect()
print(json.dumps({"frozen": frozen, "tracked": tracked, "collected": collected}))
"""


def test_the_loaded_web_process_is_frozen_and_what_comes_later_is_still_collected():
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "gpux_portal.settings", "PYTHONPATH": str(settings.BASE_DIR)}
    done = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, cwd=settings.BASE_DIR, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["frozen"] > 100_000  # Django, the apps, the URL indexes
    assert found["tracked"] < found["frozen"] // 20  # next to nothing left for the collector to walk
    assert found["collected"] >= 2000  # the 1,000 cycles made afterwards: two objects each
