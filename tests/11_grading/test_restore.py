"""Deleted or moved test cells are put back where the assignment has them (restore.py)."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
from hypothesis import given
from hypothesis import strategies as st

from coursekit.cells import grade_id
from coursekit.grading.execution.flags import is_tampering, review
from coursekit.grading.execution.restore import restore_locked_cells

REPO = Path(__file__).resolve().parents[2]


def cell(gid: str | None, kind: str, source: str = "") -> dict:
    """kind: solution, test (locked, graded), readonly (locked, not graded), plain."""
    meta = {}
    if kind != "plain":
        meta = {"nbgrader": {"grade_id": gid, "locked": kind != "solution",
                             "solution": kind == "solution", "grade": kind == "test",
                             "schema_version": 3, **({"points": 1} if kind == "test" else {})}}
    return {"cell_type": "code", "metadata": meta, "source": source or (gid or "plain"),
            "outputs": [], "execution_count": None}


SOURCE = {"cells": [
    cell(None, "plain", "# intro"), cell("imports", "readonly"), cell("sol_a", "solution"),
    cell(None, "plain", "x = 1  # a demo the test uses"), cell("helper", "readonly"),
    cell("test_a", "test", "assert a\n### BEGIN HIDDEN TESTS\nassert hidden\n"
         "### END HIDDEN TESTS\n"),
    cell("sol_b", "solution"), cell("test_b1", "test"), cell("test_b2", "test")]}


def order(nb: dict) -> list[str]:
    return [c["metadata"].get("nbgrader", {}).get("grade_id") or c["source"]
            for c in nb["cells"]]


def student(*drop: str) -> dict:
    """The source as a student has it, without the cells named in ``drop``."""
    return {"cells": [c for c in json.loads(json.dumps(SOURCE["cells"]))
                      if c["metadata"].get("nbgrader", {}).get("grade_id") not in drop]}


def test_untouched_submission_is_left_as_it_is() -> None:
    nb = student()
    restored, ids = restore_locked_cells(nb, SOURCE)
    assert restored is nb and ids == []


def test_deleted_test_after_a_locked_cell_that_is_not_graded() -> None:
    """The case nbgrader 0.9.6's add_missing_cells fails on (KeyError): a deleted test
    cell that followed a read-only cell. It goes back after the student's demo cell."""
    restored, ids = restore_locked_cells(student("test_a"), SOURCE)
    assert ids == ["test_a"]
    assert order(restored) == order(SOURCE)
    put_back = restored["cells"][5]
    assert "hidden" not in put_back["source"]  # the release version: no hidden test


def test_every_locked_cell_deleted() -> None:
    restored, ids = restore_locked_cells(
        student("imports", "helper", "test_a", "test_b1", "test_b2"), SOURCE)
    assert ids == ["imports", "helper", "test_a", "test_b1", "test_b2"]
    # the demo cell is the student's own: it stays after sol_a, before the cells put back
    assert order(restored) == ["# intro", "imports", "sol_a", "x = 1  # a demo the test uses",
                               "helper", "test_a", "sol_b", "test_b1", "test_b2"]


def test_tests_moved_to_the_top_go_back_after_their_code() -> None:
    nb = student()
    tests = [c for c in nb["cells"] if c["metadata"].get("nbgrader", {}).get("grade")]
    nb["cells"] = tests + [c for c in nb["cells"] if c not in tests]
    restored, ids = restore_locked_cells(nb, SOURCE)
    assert ids == ["test_a", "test_b1", "test_b2"]
    assert order(restored) == order(SOURCE)


def test_two_tests_swapped_in_place() -> None:
    nb = student()
    nb["cells"][7], nb["cells"][8] = nb["cells"][8], nb["cells"][7]
    restored, ids = restore_locked_cells(nb, SOURCE)
    assert len(ids) == 1 and order(restored) == order(SOURCE)


def test_students_own_cells_keep_their_place() -> None:
    nb = student("test_b1")
    nb["cells"].insert(7, cell(None, "plain", "scratch work"))
    restored, _ = restore_locked_cells(nb, SOURCE)
    assert order(restored) == ["# intro", "imports", "sol_a", "x = 1  # a demo the test uses",
                               "helper", "test_a", "sol_b", "scratch work", "test_b1",
                               "test_b2"]


def pasted(nb: dict, gid: str, at: int) -> dict:
    """``nb`` with a copy of its cell ``gid`` inserted at ``at``, as Jupyter's copy and paste
    makes it: same nbgrader metadata (grade_id included), another cell id."""
    original = next(c for c in nb["cells"] if c["metadata"].get("nbgrader", {}).get(
        "grade_id") == gid)
    original["id"] = "original"
    nb["cells"].insert(at, {**json.loads(json.dumps(original)), "id": "copy"})
    return nb


def test_a_test_pasted_just_above_itself_is_kept_once() -> None:
    """Both copies follow the same solution cell: the first is kept, nothing else moves."""
    restored, ids = restore_locked_cells(pasted(student(), "test_a", 5), SOURCE)
    assert ids == ["test_a"]
    assert order(restored) == order(SOURCE)
    assert [c.get("id") for c in restored["cells"] if grade_id(c) == "test_a"] == ["copy"]


def test_a_test_pasted_elsewhere_keeps_the_copy_in_its_place() -> None:
    """The copy pasted after another solution is dropped, the one in place kept."""
    restored, ids = restore_locked_cells(pasted(student(), "test_a", 8), SOURCE)
    assert ids == ["test_a"]
    assert order(restored) == order(SOURCE)
    assert [c.get("id") for c in restored["cells"] if grade_id(c) == "test_a"] == ["original"]


def test_a_pasted_test_is_flagged_but_not_as_tampering() -> None:
    flags = review(pasted(student(), "test_b1", 7), SOURCE, "a")
    assert flags == ["locked cell test_b1 was there 2 times (copying a cell keeps its "
                     "grade_id); one copy was graded (not a sign of tampering)"]
    assert not any(is_tampering(f) for f in flags)


SOLUTIONS = [i for i, c in enumerate(SOURCE["cells"])
             if c["metadata"].get("nbgrader", {}).get("solution")]


LOCKED = [i for i, c in enumerate(SOURCE["cells"])
          if c["metadata"].get("nbgrader", {}).get("locked")]


@given(st.permutations(range(len(SOURCE["cells"]))), st.sets(st.integers(0, 8)),
       st.lists(st.sampled_from(LOCKED), max_size=4))
def test_locked_cells_always_end_in_the_source_order(perm: list[int], drop: set[int],
                                                      copies: list[int]) -> None:
    """Whatever a student does to the order of the other cells (their solutions kept in
    order), however many cells they delete and locked cells they paste again, every locked
    cell is there once, in the source's order, and nothing of theirs is lost."""
    solutions = sorted(i for i in perm if i in SOLUTIONS)
    perm = [solutions.pop(0) if i in SOLUTIONS else i for i in perm]  # solutions in order
    for n, i in enumerate(copies):  # pasted again somewhere
        perm.insert((n * 5 + i) % (len(perm) + 1), i)
    cells = [json.loads(json.dumps(SOURCE["cells"][i])) for i in perm if i not in drop]
    restored, _ = restore_locked_cells({"cells": cells}, SOURCE)
    locked = [g for g in order(SOURCE) if g in ("imports", "helper", "test_a", "test_b1",
                                                 "test_b2")]
    assert [g for g in order(restored) if g in locked] == locked
    kept = [c["source"] for c in cells if not c["metadata"].get("nbgrader", {}).get("locked")]
    assert [c["source"] for c in restored["cells"]
            if not c["metadata"].get("nbgrader", {}).get("locked")] == kept


def test_a_real_module_with_its_tests_deleted_validates() -> None:
    release = REPO / "release" / "02_activations" / "activations.ipynb"
    source = REPO / "source_notebooks" / "02_activations" / "activations.ipynb"
    nb = json.loads(release.read_text())
    nb["cells"] = [c for c in nb["cells"]
                   if not c["metadata"].get("nbgrader", {}).get("grade")]
    restored, ids = restore_locked_cells(nb, json.loads(source.read_text()))
    assert ids and all("test" in i for i in ids)
    nbformat.validate(nbformat.from_dict(restored))
