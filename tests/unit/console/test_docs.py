"""docs/console.md shows the screenshots tests/e2e/test_console.py takes, and only those."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def test_the_console_doc_shows_existing_screenshots_the_browser_test_takes() -> None:
    doc = (ROOT / "docs" / "console.md").read_text()
    shown = set(re.findall(r"\]\(images/(console-[a-z-]+\.png)\)", doc))
    taken = {
        f"console-{n}.png"
        for n in re.findall(
            r'shots\(browser, "([a-z-]+)"\)', (ROOT / "tests/e2e/test_console.py").read_text()
        )
    }
    assert shown and shown == taken
    assert all((ROOT / "docs" / "images" / name).stat().st_size > 10_000 for name in shown)
