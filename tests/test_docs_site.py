"""The documentation site builds with `mkdocs build --strict`: every nav page exists, every
internal link and anchor resolves, the API reference renders and the tutorial executes."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def test_every_python_block_in_the_docs_is_on_a_page_that_test_docs_runs() -> None:
    """tests/test_docs.py runs the ```python blocks of docs/*.md; nested pages must have none."""
    nested = [
        page.relative_to(ROOT)
        for page in DOCS.rglob("*.md")
        if page.parent != DOCS and re.search(r"```python\n", page.read_text(encoding="utf-8"))
    ]
    assert nested == [], "move these pages to docs/ or mark their blocks ```py"


def test_the_site_builds_strictly(tmp_path: Path) -> None:
    pytest.importorskip("mkdocs")
    site = tmp_path / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (site / "index.html").exists()
    for page in ("quickstart", "quickstart.zh", "tutorial", "api/lifecycle", "api/testing"):
        assert (site / page / "index.html").exists(), page
    reference = (site / "api" / "analytics" / "index.html").read_text(encoding="utf-8")
    assert 'id="lifecycle.analytics.rfm_summary"' in reference
    tutorial = (site / "tutorial" / "index.html").read_text(encoding="utf-8")
    assert "data:image/png" in tutorial, "the tutorial is executed during the build"
