"""Feedback without hidden tests: an nbconvert preprocessor used by ``GenerateFeedback``.

nbgrader's feedback HTML shows the autograded notebook, whose test cells hold the hidden
tests in full (restored from the gradebook). ``HideHiddenTests`` replaces each hidden-test
region with one comment line, and in those cells replaces error tracebacks (which quote the
failing source line) by the error's name and message. ``grader_config.py`` puts it first in
``GenerateFeedback.preprocessors``.
"""

from __future__ import annotations

import html
import re
from typing import Any

from nbconvert.preprocessors import Preprocessor

from coursekit.cells import hide_hidden
from traitlets import Bool, Unicode

ANSI_RE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class HideHiddenTests(Preprocessor):
    """Remove hidden test code (and tracebacks that quote it) before feedback is rendered."""

    enabled = Bool(True, help="Whether to hide hidden tests in feedback").tag(config=True)

    placeholder = Unicode(
        "# (hidden tests run here; their code is not shown)",
        help="Line shown in place of a hidden-test region",
    ).tag(config=True)

    def preprocess_cell(self, cell: Any, resources: Any, index: int) -> tuple[Any, Any]:
        if cell.cell_type != "code":
            return cell, resources
        source, found = hide_hidden(cell.source, self.placeholder)
        if not found:
            return cell, resources
        cell.source = source
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                ename, evalue = output.get("ename", "Error"), output.get("evalue", "")
                output["traceback"] = [
                    f"{ename}: {evalue}" if evalue else ename,
                    "(traceback not shown: this test cell holds hidden tests)",
                ]
        return cell, resources


def leaked_lines(html_text: str, hidden_lines: list[str]) -> list[str]:
    """The hidden-test lines that occur in a rendered feedback page."""
    text = html.unescape(ANSI_RE.sub("", re.sub(r"<[^>]+>", "", html_text)))
    shown = {line.strip() for line in text.splitlines()}
    return [line for line in hidden_lines if line.strip() in shown]
