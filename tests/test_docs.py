"""The documentation runs: every Python block in README.md and docs/, and generated tables."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import lifecycle as lc

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _blocks(page: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", page.read_text(encoding="utf-8"), re.S)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_python_blocks_in_the_docs_run(page: Path, capsys: pytest.CaptureFixture[str]) -> None:
    namespace: dict[str, object] = {"__name__": f"docs_{page.stem}"}
    for block in _blocks(page):
        exec(compile(block, str(page), "exec"), namespace)
    printed = capsys.readouterr().out
    for shown in _shown_output(page):
        assert shown in printed, shown


def _shown_output(page: Path) -> list[str]:
    """The "# ..." lines right after a print(): what the reader is told it prints."""
    out = []
    for block in _blocks(page):
        after_print = False
        for line in block.splitlines():
            stripped = line.strip()
            if stripped.startswith("print("):
                after_print = True
            elif after_print and stripped.startswith("# "):
                if not stripped.startswith("#   "):
                    out.append(stripped[2:].removesuffix("...").rstrip(" ,"))
            else:
                after_print = stripped.startswith("for ")
    return out


def test_the_stage_table_in_the_docs_is_the_one_the_code_generates() -> None:
    page = (ROOT / "docs" / "stages.md").read_text(encoding="utf-8")
    table = page.split("<!-- stage-table:start -->\n")[1].split("\n<!-- stage-table:end -->")[0]
    assert table == lc.stage_table()


def test_the_readme_opens_with_the_two_commands() -> None:
    head = (ROOT / "README.md").read_text(encoding="utf-8").split("\n\n", 3)[:3]
    assert "make demo" in head[1]
    assert "make test" in head[1]
