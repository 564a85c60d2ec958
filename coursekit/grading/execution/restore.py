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

A locked cell pasted twice (copying a cell in Jupyter keeps its ``grade_id``) would make
nbgrader refuse the whole notebook; only one copy is kept (:func:`one_copy_each`): the one
in the cell's place in the source, else the first.
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


def _expected_places(source: dict[str, Any]) -> tuple[set[str], dict[str, str | None]]:
    """The source's solution cells, and for each locked cell the solution cell it follows
    (None: before the first)."""
    cells = source.get("cells", [])
    locked = {gid for c in cells if (gid := grade_id(c)) is not None and is_locked_code(c)}
    solutions = {gid for c in cells if (gid := grade_id(c)) is not None and gid not in locked}
    expected: dict[str, str | None] = {}
    last: str | None = None
    for cell in cells:
        gid = grade_id(cell)
        if gid in solutions:
            last = gid
        elif gid in locked:
            expected[gid] = last
    return solutions, expected


def one_copy_each(submitted: dict[str, Any],
                  source: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The submission with one copy of each of the source's locked cells: of several, the
    first that follows the same solution cell as in the source (else the first of all).

    Returns the (possibly new) notebook and the grade ids that had more than one copy; a
    submission without copies is returned as it is.
    """
    solutions, expected = _expected_places(source)
    cells = list(submitted.get("cells", []))
    places: dict[str, list[tuple[int, str | None]]] = {}
    last: str | None = None
    for pos, cell in enumerate(cells):
        gid = grade_id(cell)
        if gid in solutions:
            last = gid
        elif gid in expected:
            places.setdefault(gid, []).append((pos, last))
    copied = [gid for gid, found in places.items() if len(found) > 1]
    if not copied:
        return submitted, []
    drop: set[int] = set()
    for gid in copied:
        found = places[gid]
        keep = next((pos for pos, after in found if after == expected[gid]), found[0][0])
        drop |= {pos for pos, _ in found if pos != keep}
    out = dict(submitted)
    out["cells"] = [c for pos, c in enumerate(cells) if pos not in drop]
    return out, copied


def restore_locked_cells(submitted: dict[str, Any],
                         source: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The submission with the source's locked cells present and in the source's order.

    Returns the (possibly new) notebook and the grade ids of the cells put back, moved or
    found more than once (:func:`one_copy_each`); a submission that needs nothing is
    returned as it is.
    """
    submitted, copied = one_copy_each(submitted, source)
    order = {gid: i for i, c in enumerate(source.get("cells", []))
             if (gid := grade_id(c)) is not None}
    locked = {gid: c for c in source.get("cells", [])
              if (gid := grade_id(c)) is not None and is_locked_code(c)}
    # where a locked cell belongs: after the same solution cell as in the source
    solutions, expected = _expected_places(source)
    cells = list(submitted.get("cells", []))
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
        return submitted, sorted(copied, key=lambda g: order[g])
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
    return out, sorted(set(put_back) | set(copied), key=lambda g: order[g])
