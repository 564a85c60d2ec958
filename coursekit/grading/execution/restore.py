"""Put deleted or moved test cells back where the assignment has them, before autograding.

A student may delete a visible test cell, or drag one elsewhere, while working. nbgrader
restores deleted ones only with ``OverwriteCells.add_missing_cells``, and 0.9.6 raises
``KeyError`` there when a deleted test cell follows a locked cell that is not graded (the
whole submission then scores 0 with status ``error``); a test cell moved above the code it
tests fails. Neither is a reason to lose points: the grade must depend on the solution.

:func:`restore_locked_cells` therefore rebuilds the order of the locked cells (tests and
read-only cells) from the source notebook before nbgrader sees the submission: a locked
cell that is missing, or out of the source's order, is put just before the next cell of
the source (with a ``grade_id``) that the submission still has, so the student's own
cells between two graded cells keep their place and run before the test that follows them.
What the restored cell holds does not matter: nbgrader overwrites every locked cell from
the gradebook. The review flags (:mod:`coursekit.grading.execution.flags`) still name such cells.
"""

from __future__ import annotations

import copy
from bisect import bisect_left
from typing import Any

from coursekit.cells import BEGIN_HIDDEN, END_HIDDEN, cell_source, grade_id, is_locked_code


def _in_order(indices: list[int]) -> set[int]:
    """Positions (into ``indices``) of one longest increasing run of source indices."""
    tails: list[int] = []
    tail_pos: list[int] = []
    parent = [-1] * len(indices)
    for pos, value in enumerate(indices):
        k = bisect_left(tails, value)
        if k == len(tails):
            tails.append(value)
            tail_pos.append(pos)
        else:
            tails[k] = value
            tail_pos[k] = pos
        parent[pos] = tail_pos[k - 1] if k else -1
    keep: set[int] = set()
    pos = tail_pos[-1] if tail_pos else -1
    while pos >= 0:
        keep.add(pos)
        pos = parent[pos]
    return keep


def _without_hidden_tests(cell: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(cell)
    lines, hidden = [], False
    for line in cell_source(cell).splitlines(keepends=True):
        if line.strip() == BEGIN_HIDDEN:
            hidden = True
        elif line.strip() == END_HIDDEN:
            hidden = False
        elif not hidden:
            lines.append(line)
    out["source"] = "".join(lines)
    if out.get("cell_type") == "code":
        out["outputs"], out["execution_count"] = [], None
    return out


def restore_locked_cells(submitted: dict[str, Any],
                         source: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The submission with the source's locked cells present and in the source's order.

    Returns the (possibly new) notebook and the grade ids of the cells put back or moved;
    a submission that needs nothing is returned as it is.
    """
    order = {gid: i for i, c in enumerate(source.get("cells", []))
             if (gid := grade_id(c)) is not None}
    locked = {gid: c for c in source.get("cells", [])
              if (gid := grade_id(c)) is not None and is_locked_code(c)}
    solutions = {gid for gid in order if gid not in locked}
    cells = list(submitted.get("cells", []))
    # where a locked cell belongs: after the same solution cell as in the source
    expected: dict[str, str | None] = {}
    last: str | None = None
    for cell in source.get("cells", []):
        gid = grade_id(cell)
        if gid in solutions:
            last = gid
        elif gid in locked:
            expected[gid] = last
    seen: set[str] = set()
    segments: dict[str | None, list[tuple[int, str]]] = {}
    moved: set[str] = set()
    last = None
    for pos, cell in enumerate(cells):
        gid = grade_id(cell)
        if gid in solutions:
            last = gid
        elif gid in locked and gid not in seen:
            seen.add(gid)
            if expected[gid] != last:
                moved.add(gid)
            else:
                segments.setdefault(last, []).append((pos, gid))
    for run in segments.values():  # in place, but out of order among themselves
        keep = _in_order([order[gid] for _, gid in run])
        moved |= {gid for i, (_, gid) in enumerate(run) if i not in keep}
    positions = [pos for pos, cell in enumerate(cells) if grade_id(cell) in moved]
    missing = [gid for gid in locked if gid not in seen]
    if not moved and not missing:
        return submitted, []
    put_back = {gid: cells[p] for p in positions if (gid := grade_id(cells[p])) is not None}
    for gid in missing:
        put_back[gid] = _without_hidden_tests(locked[gid])
    cells = [c for c in cells if grade_id(c) not in moved]
    for gid in sorted(put_back, key=lambda g: order[g], reverse=True):
        # before the next source cell the submission still has (in order), else at the end
        later = {g for g in order if order[g] > order[gid]}
        at = next((i for i, c in enumerate(cells) if grade_id(c) in later), len(cells))
        cells.insert(at, put_back[gid])
    out = dict(submitted)
    out["cells"] = cells
    return out, sorted(put_back, key=lambda g: order[g])
