"""Why tests failed: the failure message of a graded test cell in an autograded notebook, and
messages grouped so that the same mistake with other numbers counts once.

An autograded notebook (``autograded/<student>/<NN_name>/<name>.ipynb`` in the grading root)
keeps each test cell's outputs as the grader ran it: a test that failed has an output of type
``error`` whose ``ename`` and ``evalue`` are the failure (the first such output is the one
used); a test that passed has none.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from coursekit.text import clean

#: a number standing alone (not part of a name such as ``float32`` or ``x1``)
NUMBER_RE = re.compile(r"(?<![\w.])(?>[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)(?!\w)")
HEX_RE = re.compile(r"\b0x[0-9a-fA-F]+\b")
#: two or more numbers in a row (an array's entries, a shape) count as one
RUN_RE = re.compile(r"#(?:[\s,]+#)+")
MAX_MESSAGE = 300  # characters of a message kept
NO_ERROR = "(failed without an error: output on stderr, partial or hand-set score)"


def one_line(text: str, limit: int = MAX_MESSAGE) -> str:
    """``text`` on one line, control characters escaped, cut at ``limit`` characters."""
    flat = clean(" ".join(str(text).split()))
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def normalise(message: str) -> str:
    """The message's pattern: numbers (and runs of them) become ``#``, addresses ``0x#``.

    ``expected 3, got 4`` and ``expected 3, got 5`` have the same pattern,
    ``expected #, got #``."""
    text = HEX_RE.sub("0x#", message)
    text = NUMBER_RE.sub("#", text)
    return RUN_RE.sub("#", text)


def cell_failure(cell: dict[str, Any]) -> str | None:
    """``ename: evalue`` of the first ``error`` output of a notebook cell (None: none)."""
    for out in cell.get("outputs") or []:
        if isinstance(out, dict) and out.get("output_type") == "error":
            name, value = str(out.get("ename", "") or ""), str(out.get("evalue", "") or "")
            text = f"{name}: {value}" if value.strip() else name
            return one_line(text) or "error"
    return None


def notebook_failures(path: Path, names: set[str]) -> dict[str, str] | None:
    """The failure message of every cell ``names`` (by ``grade_id``) that has one in the
    notebook at ``path``; None when the notebook is missing or cannot be read."""
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    out: dict[str, str] = {}
    cells = nb.get("cells") if isinstance(nb, dict) else None
    for cell in cells if isinstance(cells, list) else []:
        if not isinstance(cell, dict):
            continue
        meta = (cell.get("metadata") or {}).get("nbgrader") or {}
        gid = meta.get("grade_id") if isinstance(meta, dict) else None
        if gid in names and gid not in out:
            found = cell_failure(cell)
            if found is not None:
                out[gid] = found
    return out
