"""The hostile and broken submissions of module 02 (activations), with their expected scores.

Generated from ``release/02_activations`` and ``source_notebooks/02_activations``, so they
stay in sync with the module. Write them out for a look with
``.venv/bin/python tests/11_grading/corpus.py`` (into ``tests/11_grading/corpus/``).

Points of module 02 (from its source notebook): activations_test_relu 2,
activations_test_sigmoid_tanh 3, activations_test_gelu 2, activations_test_softmax 3,
activations_test_errors 1: 11 in all. Each expected score below says which of these
tests pass and why. Limits used for the corpus (``LIMITS``): 5 s per cell, 12 s per notebook.
"""

from __future__ import annotations

import copy
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from coursekit.course import Course  # noqa: E402
from coursekit.authoring.examples import student_notebook  # noqa: E402

MODULE = "02_activations"
LIMITS = {"Execute": {"timeout": 5}, "LimitedExecute": {"notebook_timeout": 12}}
LEFTOVER = "corpus-leftover-process"  # in the command line of background_process's process
TESTS = ["activations_test_relu", "activations_test_sigmoid_tanh", "activations_test_gelu",
         "activations_test_softmax", "activations_test_errors"]


@dataclass
class Case:
    """One submission and what grading it must give."""

    student: str
    text: str
    score: float
    status: str = "graded"
    flagged: list[str] = field(default_factory=list)  # substrings of the flagged column
    reason: list[str] = field(default_factory=list)  # substrings of the reason


def _cell(nb: nbformat.NotebookNode, cid: str) -> nbformat.NotebookNode:
    return next(c for c in nb.cells if c.get("id") == cid)


def _prefix(nb: nbformat.NotebookNode, cid: str, code: str) -> None:
    cell = _cell(nb, cid)
    cell.source = code + "\n" + cell.source


def _append(nb: nbformat.NotebookNode, cid: str, code: str) -> None:
    cell = _cell(nb, cid)
    cell.source = cell.source + "\n" + code


def _replace_body(nb: nbformat.NotebookNode, cid: str, old: str, new: str) -> None:
    cell = _cell(nb, cid)
    assert old in cell.source, f"{cid}: {old!r} not in the solution; update corpus.py"
    cell.source = cell.source.replace(old, new)


def _text(nb: nbformat.NotebookNode) -> str:
    return json.dumps(nb, indent=1)


def cases(course: Course) -> list[Case]:
    """Every corpus submission of module 02, built from the current notebooks."""
    module = next(m for m in course.modules() if m.folder == MODULE)
    release = nbformat.read(module.release_notebook, as_version=4)
    source = nbformat.read(module.source_notebook, as_version=4)
    full = student_notebook(release, source, "complete")

    def solved() -> nbformat.NotebookNode:
        return copy.deepcopy(full)

    out: list[Case] = []
    # honest ones: the solution written in; the untouched release; every other region
    out.append(Case("honest_full", _text(solved()), 11))
    out.append(Case("honest_blank", _text(release), 0))
    # partial: ReLU, Tanh, Softmax written, Sigmoid and GELU stubs: relu 2 + softmax 3 +
    # errors 1 (the type/axis checks sit outside the solution regions) = 6
    out.append(Case("honest_partial", _text(student_notebook(release, source, "partial")), 6))
    # a warning printed (stderr) in a test cell by correct code: costs nothing
    nb = solved()
    _prefix(nb, "activations_relu", "import warnings as _w")
    _replace_body(nb, "activations_relu", "return Tensor._from_op(np.maximum",
                  "_w.warn('ReLU: slow path', UserWarning, stacklevel=2)\n"
                  "        return Tensor._from_op(np.maximum")
    out.append(Case("honest_warning", _text(nb), 11))

    # an infinite loop before ReLU is defined: the cell is stopped after 5 s; ReLU is missing,
    # so test_relu (2) and test_errors (1, it calls ReLU()) fail: 11 - 3 = 8
    nb = solved()
    _prefix(nb, "activations_relu", "while True:\n    pass")
    out.append(Case("loop_cell", _text(nb), 8, reason=["cell time limit"]))
    # 4 s of sleep in every solution cell: test_relu runs at ~4-8 s (2 points); the 12 s
    # notebook limit runs out before test_sigmoid_tanh (after >= 12 s of sleep): 2
    nb = solved()
    for cid in ("activations_relu", "activations_sigmoid", "activations_tanh",
                "activations_gelu", "activations_softmax"):
        _append(nb, cid, "import time\ntime.sleep(4)")
    out.append(Case("notebook_limit", _text(nb), 2, "error", reason=["whole notebook"]))
    # sys.exit() before ReLU is defined: IPython turns it into an error, the kernel lives on;
    # as for the loop: 8
    nb = solved()
    _prefix(nb, "activations_relu", "import sys\nsys.exit('done')")
    out.append(Case("sys_exit", _text(nb), 8))
    # os._exit() in the GELU cell: the kernel dies; relu 2 + sigmoid_tanh 3 earned before: 5
    nb = solved()
    _prefix(nb, "activations_gelu", "import os\nos._exit(3)")
    out.append(Case("os_exit", _text(nb), 5, "error", reason=["kernel died"]))
    # a segfault in the Softmax cell: relu 2 + sigmoid_tanh 3 + gelu 2 before it: 7
    nb = solved()
    _prefix(nb, "activations_softmax", "import ctypes\nctypes.string_at(0)")
    out.append(Case("segfault", _text(nb), 7, "error", reason=["kernel died"]))

    # test cells edited to pass, nothing written: nbgrader restores them: 0
    nb = copy.deepcopy(release)
    for cid in TESTS:
        _cell(nb, cid).source = "print('all tests pass')"
    out.append(Case("edited_tests", _text(nb), 0, flagged=["edited locked cell"]))
    # test cells deleted, nothing written: restored (add_missing_cells) and failed: 0 of 11
    nb = copy.deepcopy(release)
    nb.cells = [c for c in nb.cells if c.get("id") not in TESTS]
    out.append(Case("deleted_tests", _text(nb), 0, flagged=["deleted locked cells"]))
    # test cells moved to the top of the solved notebook: they run before anything is
    # defined (nbgrader keeps the submitted order), so all fail: 0
    nb = solved()
    tests = [c for c in nb.cells if c.get("id") in TESTS]
    nb.cells = tests + [c for c in nb.cells if c.get("id") not in TESTS]
    out.append(Case("reordered_tests", _text(nb), 0, flagged=["reordered locked cells"]))
    # points raised to 100 in the metadata: the gradebook's points count: 11 of 11
    nb = solved()
    for cid in TESTS:
        _cell(nb, cid).metadata["nbgrader"]["points"] = 100
    out.append(Case("changed_points", _text(nb), 11, flagged=["changed the points"]))
    # ReLU returns a Tensor whose == is always true: the tests compare arrays, not ==:
    # test_relu fails (2), the rest pass: 9
    nb = solved()
    _replace_body(nb, "activations_relu",
                  "return Tensor._from_op(np.maximum(data, 0), \"relu\", (x,))",
                  "class _Eq(Tensor):\n"
                  "            def __eq__(self, other):\n"
                  "                return True\n"
                  "            __hash__ = object.__hash__\n"
                  "        return _Eq([0.0])")
    out.append(Case("always_equal", _text(nb), 9))
    # np.allclose / np.testing.assert_allclose replaced with ones that always pass, and a
    # Softmax that does not normalise (exp(x - max)). Without the guard every test would
    # pass (the softmax checks are all allclose-based); with numpy restored before every
    # cell, test_softmax (3) and test_errors (1, it checks a softmax column) fail: 7
    nb = solved()
    _prefix(nb, "activations_softmax",
            "np.allclose = lambda *a, **k: True\n"
            "np.testing.assert_allclose = lambda *a, **k: None")
    _replace_body(nb, "activations_softmax", "out = e / e.sum(axis=self.axis, keepdims=True)",
                  "out = e")
    out.append(Case("allclose_patched", _text(nb), 7,
                    flagged=["replaces library functions", "numpy.allclose replaced"]))
    # builtins.abs and the notebook's abs replaced, Sigmoid wrong (a straight line clipped to
    # [0, 1]): restored before the test, sigmoid(2) = 1.0 != 0.8808: test_sigmoid_tanh (3)
    # fails: 8
    nb = solved()
    _prefix(nb, "activations_sigmoid",
            "import builtins\nbuiltins.abs = lambda v: 0.0\nabs = lambda v: 0.0")
    _replace_body(nb, "activations_sigmoid", "return Tensor._from_op(out, \"sigmoid\", (x,))",
                  "return Tensor._from_op(np.clip(0.5 + data / 4, 0, 1), \"sigmoid\", (x,))")
    out.append(Case("abs_patched", _text(nb), 8,
                    flagged=["replaces library functions", "builtins.abs replaced"]))
    # 100 MB printed by a solution cell: cut in the kernel, full marks: 11
    nb = solved()
    _append(nb, "activations_relu", "print('x' * 100_000_000)")
    out.append(Case("print_flood", _text(nb), 11, reason=["output of cell"]))
    # a process started in its own session outlives the kernel: the grading worker (a child
    # subreaper) stops it after the notebook and flags it; the solution is complete: 11
    nb = solved()
    _append(nb, "activations_relu",
            "import subprocess as _sp, sys as _sys\n"
            f"_sp.Popen([_sys.executable, '-c', 'import time; time.sleep(120)', {LEFTOVER!r}],\n"
            "          start_new_session=True)")
    out.append(Case("background_process", _text(nb), 11,
                    flagged=["left 1 process(es) running", LEFTOVER]))
    # the reference solution imported instead of written: nothing stops it inside the
    # kernel (module 06's Tensor.backward imports its own file on purpose): 11, flagged
    nb = copy.deepcopy(release)
    for cid, names in (("activations_relu", "ReLU"), ("activations_sigmoid", "Sigmoid"),
                       ("activations_tanh", "Tanh"), ("activations_gelu", "GELU"),
                       ("activations_softmax", "Softmax")):
        _append(nb, cid, f"from tinytorch.core.activations import {names}")
    out.append(Case("reference_import", _text(nb), 11, flagged=["reference solution"]))
    # files that are not notebooks
    out.append(Case("not_json", '{"cells": [', 0, "corrupt", reason=["not valid JSON"]))
    out.append(Case("empty_file", "", 0, "empty"))
    return out


def write(course: Course, dest: Path) -> list[Case]:
    """Write ``dest/<student>/02_activations/activations.ipynb`` for every case."""
    all_cases = cases(course)
    for case in all_cases:
        path = dest / case.student / MODULE / "activations.ipynb"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(case.text, encoding="utf-8")
    return all_cases


if __name__ == "__main__":
    target = Path(__file__).resolve().parent / "corpus"
    written = write(Course(REPO), target)
    print(f"wrote {len(written)} submissions to {target}")
