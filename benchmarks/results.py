"""Writing a benchmark's own section of RESULTS.md, between its marker comments, leaving the rest as it is."""

from __future__ import annotations

from pathlib import Path

FRESH = "# Benchmark results\n\nEach benchmark under `benchmarks/` writes its own section here.\n"


def update_section(path: Path, begin: str, end: str, body: str) -> None:
    """Replace the text between ``begin`` and ``end`` in ``path`` with ``body`` (or append the section)."""
    text = path.read_text() if path.exists() else FRESH
    block = f"{begin}\n{body.rstrip()}\n{end}\n"
    if begin in text and end in text:
        before, rest = text.split(begin, 1)
        after = rest.split(end, 1)[1].lstrip("\n")
        text = before + block + ("\n" + after if after else "")
    else:
        text = text.rstrip() + "\n\n" + block
    path.write_text(text)
