"""How the interpreter runs while a sync writes pages: the garbage collector's thresholds and the GIL's switch
interval, set for the sync and put back after it (``sync_interpreter_settings``).

A first sync is two threads and the database: the listing thread reads, parses and prepares the next pages while
the writing thread sends the current one to PostgreSQL. Both settings are measured in benchmarks/RESULTS.md.
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Iterator
from contextlib import contextmanager

# A young collection per ~100,000 new objects (a few pages) instead of 700; older generations as rarely as the
# interpreter's own ratios give.
SYNC_GC_THRESHOLDS = (100_000, 10, 10)
# Seconds a thread may hold the GIL while another waits for it (the interpreter's default is 0.005).
SYNC_SWITCH_INTERVAL = 0.0001


@contextmanager
def sync_interpreter_settings() -> Iterator[None]:
    """Run the block with the sync's garbage-collector thresholds and GIL switch interval; restore both after.

    * Garbage collection: a page builds tens of thousands of short-lived tuples and dicts, so with the default
      thresholds the collector runs thousands of times per sync and its older generations walk much of the
      worker process. Reference counting still frees the rows at once, and cycles are still collected, every
      few pages; memory stays flat.
    * Switch interval: every statement the writing thread sends releases the GIL, and the listing thread, busy
      parsing, takes it. When the database answers, the writer waits for the listing thread to give the GIL
      back, by default up to 5 ms per statement, ten statements a page, while PostgreSQL sits idle. A short
      interval gives it back within a tenth of a millisecond.
    """
    thresholds, interval = gc.get_threshold(), sys.getswitchinterval()
    gc.set_threshold(*SYNC_GC_THRESHOLDS)
    sys.setswitchinterval(SYNC_SWITCH_INTERVAL)
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        sys.setswitchinterval(interval)
