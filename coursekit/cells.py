"""nbgrader's cells and regions, read the same way everywhere.

A source notebook's code cells carry nbgrader metadata (``metadata.nbgrader``: ``grade_id``,
``locked``, ``solution``, ``grade``, ``points``) and regions marked by comment lines:
solutions between ``### BEGIN SOLUTION`` and ``### END SOLUTION``, hidden tests between
``### BEGIN HIDDEN TESTS`` and ``### END HIDDEN TESTS``. The leak guards, the flags for
review, restoring moved test cells, the example class and feedback pages all read them
through this module.
"""

from __future__ import annotations

import re
from typing import Any

BEGIN_SOLUTION = "### BEGIN SOLUTION"
END_SOLUTION = "### END SOLUTION"
BEGIN_HIDDEN = "### BEGIN HIDDEN TESTS"
END_HIDDEN = "### END HIDDEN TESTS"
#: The marker words as they are searched for in any line (with or without ``###``).
MARKERS = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS")
#: Lines shorter than this give nothing away.
MIN_SECRET_LEN = 8
TRIVIAL_RE = re.compile(r"^[\W\d_]*$|^(pass|return|else:|try:|finally:|break|continue|None)$")
IMPORT_RE = re.compile(r"^(import [\w., ]+|from [\w.]+ import [\w., ()*]+)$")


def cell_source(cell: dict[str, Any]) -> str:
    """A notebook cell's source as one string (nbformat JSON may store a list of lines)."""
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else str(src)


def nbgrader_meta(cell: dict[str, Any]) -> dict[str, Any]:
    """A cell's nbgrader metadata (empty for a cell without)."""
    return (cell.get("metadata") or {}).get("nbgrader") or {}


def grade_id(cell: dict[str, Any]) -> str | None:
    """A cell's nbgrader ``grade_id``, or None."""
    return nbgrader_meta(cell).get("grade_id")


def is_locked_code(cell: dict[str, Any]) -> bool:
    """A locked cell that is not a solution (given code or a test)."""
    meta = nbgrader_meta(cell)
    return bool(meta.get("locked")) and not meta.get("solution")


def is_test(cell: dict[str, Any]) -> bool:
    """A graded code cell whose code students cannot change (a test)."""
    meta = nbgrader_meta(cell)
    return (cell.get("cell_type") == "code" and bool(meta.get("grade"))
            and not meta.get("solution"))


def is_trivial(line: str, *, imports: bool = False) -> bool:
    """A stripped line too short or too common to give anything away (also an import line
    when ``imports``)."""
    return (len(line) < MIN_SECRET_LEN or bool(TRIVIAL_RE.match(line)) or line.startswith("#")
            or (imports and bool(IMPORT_RE.match(line))))


def line_regions(source_nb: dict[str, Any]) -> dict[str, dict[str, str]]:
    """Stripped lines of a source notebook by region: ``visible``, ``solution``, ``hidden``.

    Each maps a line to the id of the first cell it occurs in; marker lines are in none.
    """
    found: dict[str, dict[str, str]] = {"visible": {}, "solution": {}, "hidden": {}}
    for cell in source_nb.get("cells", []):
        cid = str(cell.get("id", "?"))
        region = "visible"
        for raw in cell_source(cell).splitlines():
            line = raw.strip()
            if "BEGIN SOLUTION" in line:
                region = "solution"
            elif "BEGIN HIDDEN TESTS" in line:
                region = "hidden"
            elif "END SOLUTION" in line or "END HIDDEN TESTS" in line:
                region = "visible"
            else:
                found[region].setdefault(line, cid)
    return found


def hide_hidden(source: str, placeholder: str) -> tuple[str, bool]:
    """``source`` with every hidden-test region replaced by ``placeholder`` (indented as
    its marker); True if it had any."""
    out: list[str] = []
    inside = found = False
    for line in source.splitlines():
        if "BEGIN HIDDEN TESTS" in line:
            inside = found = True
            out.append(line[: len(line) - len(line.lstrip())] + placeholder)
        elif "END HIDDEN TESTS" in line:
            inside = False
        elif not inside:
            out.append(line)
    return "\n".join(out), found


def visible_lines(source: str) -> list[str]:
    """Non-blank stripped lines outside hidden-test regions (what students see of a cell)."""
    shown, _ = hide_hidden(source, "")
    return [line.strip() for line in shown.splitlines() if line.strip()]
