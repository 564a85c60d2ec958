"""Flags for review: what a submission did that grading cannot undo or should not ignore.

nbgrader restores edited/deleted test cells and the kernel guard restores replaced
library functions, so these do not change a score; an instructor still wants to know.
Importing the module's own reference file (``tinytorch.core.<name>``) cannot be stopped
in general (``Tensor.backward`` imports module 06's file on purpose), so it is flagged.

:func:`review` reads the submitted notebook against the source notebook;
:func:`kernel_flags` turns the kernel guard's report into flags.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from coursekit.cells import cell_source, nbgrader_meta, visible_lines

PATCH_RE = re.compile(
    r"(?m)(?:^|;)\s*(np|numpy|math|builtins|__builtins__)(\s*\.\s*\w+)+\s*=(?!=)"
    r"|\bsetattr\s*\(\s*(np|numpy|math|builtins|__builtins__)\b"
    r"|__builtins__\s*\[|\bsys\s*\.\s*modules\s*\[")
SHADOW_RE = re.compile(
    r"(?m)^\s*(def\s+(abs|isinstance|float|all|any)\s*\(|(abs|isinstance|float|all|any|np|math)"
    r"\s*=(?!=))")
EVENTS_RE = re.compile(r"\.events\s*\.\s*(unregister|callbacks)")


def reference_import_re(module_name: str) -> re.Pattern[str]:
    """Ways of reaching ``tinytorch/core/<module_name>.py`` from a notebook."""
    n = re.escape(module_name)
    return re.compile(
        rf"tinytorch\s*\.\s*core\s*\.\s*{n}\b"
        rf"|from\s+tinytorch\s*\.\s*core\s+import\s+[^\n]*\b{n}\b"
        rf"|core\s*/\s*{n}\.py")


def review(submitted: dict[str, Any], source: dict[str, Any], module_name: str) -> list[str]:
    """Flags for a submitted notebook (parsed JSON) against its source notebook."""
    flags: list[str] = []
    locked = {m["grade_id"]: (cell_source(c), m) for c in source.get("cells", [])
              if (m := nbgrader_meta(c)).get("locked") and m.get("grade_id")}
    order_src = [gid for gid in (nbgrader_meta(c).get("grade_id") for c in source.get("cells", []))
                 if gid in locked]
    seen: list[str] = []
    ref_re = reference_import_re(module_name)
    for cell in submitted.get("cells", []):
        meta = nbgrader_meta(cell)
        gid = meta.get("grade_id")
        text = cell_source(cell)
        if gid in locked:
            seen.append(gid)
            src_text, src_meta = locked[gid]
            if visible_lines(text) != visible_lines(src_text):
                flags.append(f"edited locked cell {gid}")
            if meta.get("grade") and float(meta.get("points", 0)) != float(
                    src_meta.get("points", 0)):
                flags.append(f"changed the points of {gid} ({meta.get('points')} instead of "
                             f"{src_meta.get('points')})")
            continue
        if cell.get("cell_type") != "code":
            continue
        if meta.get("grade") and gid:
            flags.append(f"added a graded cell {gid}")
        where = f"cell {gid or cell.get('id', '?')}"
        if ref_re.search(text):
            flags.append(f"{where} uses the reference solution tinytorch/core/{module_name}.py")
        if PATCH_RE.search(text):
            flags.append(f"{where} replaces library functions "
                         f"({PATCH_RE.search(text).group(0).strip()[:60]!r})")
        if SHADOW_RE.search(text):
            flags.append(f"{where} redefines a name tests rely on "
                         f"({SHADOW_RE.search(text).group(0).strip()[:40]!r})")
        if EVENTS_RE.search(text):
            flags.append(f"{where} tampers with IPython's cell events")
    missing = [gid for gid in order_src if gid not in seen]
    if missing:
        flags.append("deleted locked cells " + ", ".join(missing))
    present = [gid for gid in order_src if gid in seen]
    first_seen = list(dict.fromkeys(seen))
    if first_seen != present:
        flags.append("reordered locked cells")
    return flags


def kernel_flags(report: Path) -> list[str]:
    """Flags from the kernel guard's report (``<report>.kernel``, one JSON object a line)."""
    path = Path(str(report) + ".kernel")
    if not path.is_file():
        return []
    out = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines()[:50]:
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue
        if event.get("kind") == "guard":
            out.append(f"{event.get('what')} (restored before the next cell)")
    return out
