"""The tutorial notebook runs from top to bottom, quickly, and is stored without outputs."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "examples" / "tutorial.ipynb"

#: Seconds any one cell may take; the whole notebook runs in well under a minute.
CELL_TIMEOUT = 120
TOTAL_BUDGET = 180


def test_the_notebook_is_stored_without_outputs() -> None:
    notebook = json.loads(NOTEBOOK.read_text(encoding="utf-8"))
    for number, cell in enumerate(notebook["cells"]):
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [], f"cell {number} has outputs: clear them before committing"
            assert cell["execution_count"] is None, f"cell {number} has an execution count"


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_the_tutorial_notebook_runs(tmp_path: Path) -> None:
    nbclient = pytest.importorskip("nbclient")
    nbformat = pytest.importorskip("nbformat")

    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(
        notebook,
        timeout=CELL_TIMEOUT,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},  # the kernel's working directory
    )
    start = time.perf_counter()
    client.execute()  # raises CellExecutionError, with the cell and traceback, on any error
    elapsed = time.perf_counter() - start
    assert elapsed < TOTAL_BUDGET, f"the notebook took {elapsed:.0f} s"

    outputs = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    figures = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(figures) >= 9, "every plot cell shows its figure"
    tables = [o for o in outputs if "text/html" in o.get("data", {})]
    assert len(tables) >= 15, "every result cell shows its table"
    for o in tables:  # and a one-line text form beside it
        text = o["data"]["text/plain"]
        assert "\n" not in text, text
        assert len(text) <= 100, text
    assert list(tmp_path.iterdir()) == [], "the notebook writes no files"
