"""docs/cli.md covers every command of the command line."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from lifecycle import cli

DOC = Path(__file__).resolve().parent.parent / "docs" / "cli.md"


def commands() -> set[str]:
    parser = cli._parser()  # the one place that knows the commands
    found = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return set(found[0].choices)


def test_every_command_has_a_row_in_the_cli_page() -> None:
    documented = set(re.findall(r"^\| `lifecycle (\w+)", DOC.read_text(encoding="utf-8"), re.M))
    assert {"plan", "dispatch", "history", "report"} <= commands()
    assert commands() == documented
