"""The hostile and broken submissions of module 02 (activations), with their expected scores.

Generated from ``release/02_activations`` and ``source_notebooks/02_activations``, so they
stay in sync with the module. Write them out for a look with
``.venv/bin/python tests/11_grading/corpus.py`` (into ``tests/11_grading/corpus/``).

Points of module 02 (from its source notebook, in notebook order): activations_test_relu 1,
activations_test_sigmoid 1, activations_test_sigmoid_stable 1, activations_test_tanh 1,
activations_test_gelu 1, activations_test_gelu_large 1, activations_test_softmax 1,
activations_test_softmax_stable 1: 8 in all (``POINTS``, ``TOTAL``). Each expected score
below says which of these tests pass and why. Limits used for the corpus (``LIMITS``): 5 s
per cell, 12 s per notebook.
"""

from __future__ import annotations

import copy
import json
import sys
import uuid
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
POINTS = {
    "activations_test_relu": 1,
    "activations_test_sigmoid": 1,
    "activations_test_sigmoid_stable": 1,
    "activations_test_tanh": 1,
    "activations_test_gelu": 1,
    "activations_test_gelu_large": 1,
    "activations_test_softmax": 1,
    "activations_test_softmax_stable": 1,
}
TESTS = list(POINTS)
TOTAL = sum(POINTS.values())  # 8


@dataclass
class Case:
    """One submission and what grading it must give."""

    student: str
    text: str
    score: float | None  # None: how far it gets before a limit stops it depends on the moment
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


def cases(course: Course, targets: Targets | None = None) -> list[Case]:
    """Every corpus submission of module 02, built from the current notebooks; with
    ``targets``, also the attacks on the grader (:func:`attacks`)."""
    module = next(m for m in course.modules() if m.folder == MODULE)
    release = nbformat.read(module.release_notebook, as_version=4)
    source = nbformat.read(module.source_notebook, as_version=4)
    full = student_notebook(release, source, "complete")

    def solved() -> nbformat.NotebookNode:
        return copy.deepcopy(full)

    out: list[Case] = []
    # honest ones: the solution written in; the untouched release; every other region
    out.append(Case("honest_full", _text(solved()), 8))
    out.append(Case("honest_blank", _text(release), 0))
    # partial: ReLU, Tanh, Softmax written, Sigmoid and GELU stubs: relu 1 + tanh 1 +
    # softmax 1 + softmax_stable 1 = 4
    out.append(Case("honest_partial", _text(student_notebook(release, source, "partial")), 4))
    # a warning printed (stderr) in a test cell by correct code: costs nothing
    nb = solved()
    _prefix(nb, "activations_relu", "import warnings as _w")
    _replace_body(nb, "activations_relu", "return Tensor._from_op(np.maximum",
                  "_w.warn('ReLU: slow path', UserWarning, stacklevel=2)\n"
                  "        return Tensor._from_op(np.maximum")
    out.append(Case("honest_warning", _text(nb), 8))

    # an infinite loop before ReLU is defined: the cell is stopped after 5 s; ReLU is missing,
    # so test_relu (1, the only test that calls ReLU) fails: 8 - 1 = 7
    nb = solved()
    _prefix(nb, "activations_relu", "while True:\n    pass")
    out.append(Case("loop_cell", _text(nb), 7, reason=["cell time limit"]))
    # 4 s of sleep in every solution cell: test_relu runs at ~4 s, test_sigmoid and
    # test_sigmoid_stable at ~8 s (1 each); the 12 s notebook limit runs out in the Tanh
    # cell (>= 12 s of sleep by its end): 3
    nb = solved()
    for cid in ("activations_relu", "activations_sigmoid", "activations_tanh",
                "activations_gelu", "activations_softmax"):
        _append(nb, cid, "import time\ntime.sleep(4)")
    out.append(Case("notebook_limit", _text(nb), 3, "error", reason=["whole notebook"]))
    # sys.exit() before ReLU is defined: IPython turns it into an error, the kernel lives on;
    # as for the loop: 7
    nb = solved()
    _prefix(nb, "activations_relu", "import sys\nsys.exit('done')")
    out.append(Case("sys_exit", _text(nb), 7))
    # os._exit() in the GELU cell: the kernel dies; relu, sigmoid, sigmoid_stable and tanh
    # (1 each) earned before: 4
    nb = solved()
    _prefix(nb, "activations_gelu", "import os\nos._exit(3)")
    out.append(Case("os_exit", _text(nb), 4, "error", reason=["kernel died"]))
    # a segfault in the Softmax cell (ctypes is refused while grading; a recursion through
    # C calls deeper than the C stack crashes the interpreter all the same): the six tests
    # before it: 6
    nb = solved()
    _prefix(nb, "activations_softmax", "import sys\nsys.setrecursionlimit(10 ** 8)\n"
            "def _down(n):\n    return list(map(_down, [n + 1]))\n_down(0)")
    out.append(Case("segfault", _text(nb), 6, "error", reason=["kernel died"]))

    # test cells edited to pass, nothing written: nbgrader restores them: 0
    nb = copy.deepcopy(release)
    for cid in TESTS:
        _cell(nb, cid).source = "print('all tests pass')"
    out.append(Case("edited_tests", _text(nb), 0, flagged=["edited locked cell"]))
    # test cells deleted, nothing written: restored (add_missing_cells) and failed: 0 of 8
    nb = copy.deepcopy(release)
    nb.cells = [c for c in nb.cells if c.get("id") not in TESTS]
    out.append(Case("deleted_tests", _text(nb), 0, flagged=["deleted locked cells"]))
    # the same deleted from the solved notebook: put back before grading, full marks: 8
    nb = solved()
    nb.cells = [c for c in nb.cells if c.get("id") not in TESTS]
    out.append(Case("deleted_tests_solved", _text(nb), 8,
                    flagged=["deleted locked cells", "put back in place"]))
    # test cells moved to the top of the solved notebook: put back after the code they
    # test before grading (nbgrader alone would run them first, all failing): 8
    nb = solved()
    tests = [c for c in nb.cells if c.get("id") in TESTS]
    nb.cells = tests + [c for c in nb.cells if c.get("id") not in TESTS]
    out.append(Case("reordered_tests", _text(nb), 8,
                    flagged=["reordered locked cells", "put back in place"]))
    # test_relu pasted again just above itself (copying a cell keeps its grade_id, which
    # nbgrader refuses twice): one copy graded, full marks: 8, flagged as no tampering
    nb = solved()
    at = next(i for i, c in enumerate(nb.cells) if c.get("id") == "activations_test_relu")
    nb.cells.insert(at, copy.deepcopy(nb.cells[at]))
    nb.cells[at].id = "pasted-copy"
    out.append(Case("pasted_test", _text(nb), 8,
                    flagged=["activations_test_relu was there 2 times", "not a sign of tampering"]))
    # memory-backed files are refused in the sandbox (one sent over a Unix socket to itself
    # and closed is memory no process holds): the ReLU cell stops at memfd_create before
    # ReLU is defined: test_relu (1) fails: 7
    nb = solved()
    _prefix(nb, "activations_relu", "import os as _os\n_os.memfd_create('held')")
    out.append(Case("memfd", _text(nb), 7))
    # points raised to 100 in the metadata: the gradebook's points count: 8 of 8
    nb = solved()
    for cid in TESTS:
        _cell(nb, cid).metadata["nbgrader"]["points"] = 100
    out.append(Case("changed_points", _text(nb), 8, flagged=["changed the points"]))
    # ReLU returns a Tensor whose == is always true: the tests compare arrays, not ==:
    # test_relu fails (1), the rest pass: 7; flagged (no class of module 02 defines __eq__)
    nb = solved()
    _replace_body(nb, "activations_relu",
                  "return Tensor._from_op(np.maximum(data, 0), \"relu\", (x,))",
                  "class _Eq(Tensor):\n"
                  "            def __eq__(self, other):\n"
                  "                return True\n"
                  "            __hash__ = object.__hash__\n"
                  "        return _Eq([0.0])")
    out.append(Case("always_equal", _text(nb), 7, flagged=["defines __eq__, __hash__ in _Eq"]))
    # np.allclose / np.testing.assert_allclose replaced with ones that always pass, and a
    # Softmax that does not normalise (exp(x - max)). Without the guard every test would
    # pass (the softmax checks are all allclose-based); with numpy restored before every
    # cell, test_softmax (1) and test_softmax_stable (1: its hidden rows of equal logits
    # must come out as 1/3 each) fail: 8 - 2 = 6
    nb = solved()
    _prefix(nb, "activations_softmax",
            "np.allclose = lambda *a, **k: True\n"
            "np.testing.assert_allclose = lambda *a, **k: None")
    _replace_body(nb, "activations_softmax", "out = e / e.sum(axis=self.axis, keepdims=True)",
                  "out = e")
    out.append(Case("allclose_patched", _text(nb), 6,
                    flagged=["replaces library functions", "numpy.allclose replaced"]))
    # builtins.abs and the notebook's abs replaced, Sigmoid wrong (a straight line clipped to
    # [0, 1]): restored before the test, sigmoid(2) = 1.0 != 0.8808: test_sigmoid (1) fails;
    # test_sigmoid_stable passes (far from 0 the clipped line is exactly 0 or 1): 7
    nb = solved()
    _prefix(nb, "activations_sigmoid",
            "import builtins\nbuiltins.abs = lambda v: 0.0\nabs = lambda v: 0.0")
    _replace_body(nb, "activations_sigmoid", "return Tensor._from_op(out, \"sigmoid\", (x,))",
                  "return Tensor._from_op(np.clip(0.5 + data / 4, 0, 1), \"sigmoid\", (x,))")
    out.append(Case("abs_patched", _text(nb), 7,
                    flagged=["replaces library functions", "builtins.abs replaced"]))
    # 100 MB printed by a solution cell: cut in the kernel, full marks: 8
    nb = solved()
    _append(nb, "activations_relu", "print('x' * 100_000_000)")
    out.append(Case("print_flood", _text(nb), 8, reason=["output of cell"]))
    # a process still running when the notebook ends: the grader stops it with the kernel
    # (in the sandbox, with the kernel's PID namespace) and flags it: 8
    nb = solved()
    _append(nb, "activations_relu",
            "import subprocess as _sp, sys as _sys\n"
            f"_sp.Popen([_sys.executable, '-c', 'import time; time.sleep(120)', {LEFTOVER!r}])")
    out.append(Case("background_process", _text(nb), 8,
                    flagged=["left 1 process(es) running", LEFTOVER]))
    # the reference solution imported instead of written: module 02 is not in the sandbox's
    # package (only 01), so every import fails and every test with it: 0, flagged
    nb = copy.deepcopy(release)
    for cid, names in (("activations_relu", "ReLU"), ("activations_sigmoid", "Sigmoid"),
                       ("activations_tanh", "Tanh"), ("activations_gelu", "GELU"),
                       ("activations_softmax", "Softmax")):
        _append(nb, cid, f"from tinytorch.core.activations import {names}")
    out.append(Case("reference_import", _text(nb), 0, flagged=["reference solution"]))
    # the same, hidden from the review flags: still not there to import: 0
    nb = copy.deepcopy(release)
    _append(nb, "activations_relu",
            "import importlib as _il\n"
            "_m = _il.import_module('tiny' + 'torch.core.' + 'activ' + 'ations')\n"
            "ReLU, Sigmoid, Tanh, GELU, Softmax = (getattr(_m, n) for n in "
            "('ReLU', 'Sigmoid', 'Tanh', 'GELU', 'Softmax'))")
    out.append(Case("obfuscated_import", _text(nb), 0))
    if targets is not None:
        out += attacks(release, targets)
    # files that are not notebooks
    out.append(Case("not_json", '{"cells": [', 0, "corrupt", reason=["not valid JSON"]))
    out.append(Case("empty_file", "", 0, "empty"))
    return out


@dataclass
class Targets:
    """What a hostile student aims at: where things are on the grading machine."""

    course_root: Path  # the instructor's repository: modules/, source_notebooks/
    grading_root: Path  # `course grade --out`: gradebooks, submitted/, autograded/
    submissions: Path  # the folder of every student's notebook
    port: int  # a server listening on 127.0.0.1 of the grading machine
    secret: str  # the value of secret variables in the grader's environment
    victim: str = "honest_full"  # the student whose grade an attacker changes
    #: the name of the files an attack writes outside its folder (none may exist
    #: afterwards); one of its own per run, so runs side by side do not see each other's
    planted: str = field(default_factory=lambda: f"planted-by-attack-{uuid.uuid4().hex}.txt")

#: Code every attack runs first: what it steals is printed and written into its own
#: folder, from where nbgrader (without the sandbox) would copy it into the feedback.
_LOOT = """
import glob as _g, json as _j, os as _o, sys as _s
def _loot(name, text):
    print(f"LOOT {name}: {text}")
    with open(f"loot-{name}.txt", "a") as _fh:
        _fh.write(str(text) + "\\n")
"""


def attacks(release: nbformat.NotebookNode, t: Targets) -> list[Case]:
    """Blank notebooks whose first solution cell attacks the grader, each with its score
    in the sandbox (every attack fails, so every one scores 0; the victim keeps 8)."""
    first = "activations_relu"
    out: list[Case] = []

    def attack(student: str, code: str, score: float = 0, **kw: list[str]) -> None:
        nb = copy.deepcopy(release)
        _prefix(nb, first, _LOOT + code)
        out.append(Case(student, _text(nb), score, **kw))

    # grade forgery: every gradebook it can find, its own grades set to full marks
    attack("attack_forge", f"""
import sqlite3 as _sq
for _db in (_g.glob({str(t.grading_root)!r} + "/**/*.db", recursive=True)
            + _g.glob(_o.getcwd() + "/../../../**/*.db", recursive=True)):
    try:
        _c = _sq.connect(_db)
        _c.execute("UPDATE grade SET manual_score = 100")
        _c.commit()
        _loot("forged", _db)
    except Exception as _e:
        pass
""")
    # solution theft: the source notebook's solution cells, run after every cell (so the
    # stubs of the later cells do not replace what was stolen)
    attack("attack_theft", f"""
_paths = _g.glob({str(t.course_root)!r} + "/source_notebooks/*/activations.ipynb")
_paths += _g.glob({str(t.grading_root)!r} + "/source_notebooks/*/activations.ipynb")
_paths += [p + "/source_notebooks/02_activations/activations.ipynb" for p in _s.path]
_stolen = []
for _p in _paths:
    try:
        _nb = _j.load(open(_p))
    except OSError:
        continue
    _stolen = ["".join(c["source"]) for c in _nb["cells"]
               if c["metadata"].get("nbgrader", {{}}).get("solution")]
    _loot("stolen", _p)
    break
def _run_stolen(*_a):
    for _src in _stolen:
        exec(_src, get_ipython().user_ns)
get_ipython().events.register("post_run_cell", _run_stolen)
""")
    # hidden tests and solutions read from every file it can reach, into its own folder
    attack("attack_exfiltrate", f"""
for _root in ({str(t.course_root)!r}, {str(t.grading_root)!r}, {str(t.submissions)!r}):
    for _p in _g.glob(_root + "/**/*", recursive=True):
        if _p.endswith((".ipynb", ".py", ".db")) and _o.path.isfile(_p):
            try:
                _loot("file", _p + "\\n" + open(_p, errors="replace").read())
            except OSError:
                pass
""")
    # another student's submission overwritten with a blank notebook (and their graded copy)
    attack("attack_victim", f"""
_blank = open(_g.glob(_o.getcwd() + "/*.ipynb")[0]).read() if _g.glob("*.ipynb") else "{{}}"
for _p in (_g.glob({str(t.submissions)!r} + "/{t.victim}/**/*.ipynb", recursive=True)
           + _g.glob({str(t.grading_root)!r} + "/*/{t.victim}/**/*.ipynb", recursive=True)):
    try:
        open(_p, "w").write(_blank)
        _loot("overwritten", _p)
    except OSError:
        pass
""")
    # the grader's environment printed into the notebook and written to its folder
    attack("attack_environ", """
_loot("environ", dict(_o.environ))
""")
    # a connection to the grading machine's loopback
    attack("attack_network", f"""
import socket as _so
try:
    _so.create_connection(("127.0.0.1", {t.port}), timeout=3).sendall(b"attack_network")
    _loot("network", "connected")
except OSError as _e:
    pass
""")
    # files planted outside its folder: the grading root, the course, /tmp, its HOME
    attack("attack_plant", f"""
for _d in ({str(t.grading_root)!r}, {str(t.course_root)!r}, {str(t.submissions)!r}, "/tmp",
           _o.path.expanduser("~"), _o.path.dirname(_o.getcwd())):
    try:
        open(_o.path.join(_d, {t.planted!r}), "w").write("planted")
        _loot("planted", _d)
    except OSError:
        pass
""")
    return out


#: Code that finds hidden-test code wherever the kernel might hold it while a test runs, and
#: returns it base64-encoded (the channel an exfiltrating notebook would use).
_STEAL = """
import base64 as _b64, linecache as _lc, sys as _sys, zlib as _zl
def _steal():
    found = []
    try:
        found.append(str(get_ipython().kernel.get_parent().get("content", {}).get("code")))
    except Exception:
        pass
    try:
        found += [str(x) for x in get_ipython().user_ns.get("In", [])[-3:]]
    except Exception:
        pass
    found += ["".join(v[2]) for v in list(_lc.cache.values())[-5:] if len(v) > 2]
    return _b64.b64encode(_zl.compress("\\n".join(found).encode())).decode()
"""


def seal_cases(course: Course) -> list[Case]:
    """Attacks from inside the kernel, where the notebook's code shares the interpreter with
    the tests (graded in their own run by test_seal.py), and the honest code that must not
    be mistaken for them. Each expected score says which tests pass and why."""
    module = next(m for m in course.modules() if m.folder == MODULE)
    release = nbformat.read(module.release_notebook, as_version=4)
    source = nbformat.read(module.source_notebook, as_version=4)
    full = student_notebook(release, source, "complete")
    out: list[Case] = []

    def blank(student: str, code: str, **kw: list[str]) -> None:
        nb = copy.deepcopy(release)
        _prefix(nb, "activations_relu", code)
        out.append(Case(student, _text(nb), 0, **kw))

    def solved(student: str, code: str, score: float = TOTAL, cid: str = "activations_relu",
               status: str = "graded", **kw: list[str]) -> None:
        nb = copy.deepcopy(full)
        _append(nb, cid, code)
        out.append(Case(student, _text(nb), score, status, **kw))

    # Nothing written; every later cell's first output made an execute_result (nbgrader
    # alone gives full marks at the first execute_result): 0
    blank("attack_displayhook", "get_ipython().events.register('pre_run_cell', "
          "lambda info: get_ipython().displayhook('ok'))",
          flagged=["pre_run_cell callbacks", "IPython's cell events"])
    # every cell that asserts (and the grader's own call) turned into `pass`: 0
    blank("attack_transformer", "get_ipython().input_transformers_post.append(\n"
          "    lambda lines: ['pass\\n'] if any('assert' in l or '__grader' in l "
          "for l in lines) else lines)", flagged=["no signed outcome", "transformers"])
    # every statement of every later cell replaced by `pass`, at the level of the AST: 0
    blank("attack_ast", "import ast as _ast\n"
          "class _Nothing(_ast.NodeTransformer):\n"
          "    def visit_Module(self, node):\n"
          "        return _ast.Module(body=[_ast.Pass()], type_ignores=[])\n"
          "get_ipython().ast_transformers.append(_Nothing())",
          flagged=["no signed outcome", "transformers"])
    # a NumPy function's code replaced by one that always passes (same function object): 0
    blank("attack_codeswap", "import numpy as _np\n"
          "_np.testing.assert_allclose.__code__ = (lambda *a, **k: None).__code__",
          flagged=["__code__ (refused)"])
    # the tolerances of a NumPy comparison widened: refused too: 0
    blank("attack_defaults", "import numpy as _np\n"
          "_np.testing.assert_allclose.__defaults__ = (1e9, 1e9, True, '', True)",
          flagged=["__defaults__ (refused)"])
    # lines that look like the grader's outcomes written where the grader reads them, and the
    # grader's runner replaced by one that does nothing: 0
    blank("attack_forged_lines",
          "import os as _os, stat as _st\n"
          "for _fd in range(3, 256):\n"
          "    try:\n"
          "        if not _st.S_ISFIFO(_os.fstat(int(_fd)).st_mode):\n"
          "            continue\n"
          "        _os.write(int(_fd), b'\\x1eCKV1 ' + b'0' * 64 + b' ' + "
          "'1:activations_test_relu:x:test:passed'.encode().hex().encode() + b'\\n')\n"
          "    except OSError:\n"
          "        pass\n"
          "import builtins as _bi\n"
          "_bi.__grader_run__ = lambda *a: None",
          flagged=["not signed (forged)", "no signed outcome"])
    # a wrong Softmax (not normalised) whose __call__ replaces np.allclose for the test that
    # called it, with a stand-in that always passes and puts the real one back on its first
    # use: caught at the statement after the call; test_softmax and test_softmax_stable
    # fail, the six others pass: 6
    nb = copy.deepcopy(full)
    _replace_body(nb, "activations_softmax", "out = e / e.sum(axis=self.axis, keepdims=True)",
                  "out = e")
    _append(nb, "activations_softmax",
            "_real = np.allclose\n"
            "def _fake(*a, **k):\n"
            "    np.allclose = _real\n"
            "    return True\n"
            "_call = Softmax.__call__\n"
            "def _patched(self, x):\n"
            "    np.allclose = _fake\n"
            "    return _call(self, x)\n"
            "Softmax.__call__ = _patched")
    out.append(Case("attack_transient", _text(nb), 6,
                    flagged=["numpy.allclose replaced while activations_test_softmax ran"]))
    # hidden-test code looked for everywhere the kernel might hold it (the request, the
    # history, linecache) and printed base64-encoded after every cell, and put into the
    # message of a failing test: nothing written, 0; nothing recoverable from anything the
    # student gets back (test_seal.py decodes every such token of the page)
    blank("attack_exfiltrate", _STEAL +
          "get_ipython().events.register('post_run_cell', lambda r: print(_steal()))\n"
          "class ReLU:\n"
          "    def __call__(self, x):\n"
          "        raise ValueError(_steal())",
          flagged=["post_run_cell callbacks"])
    # the test's own frame asked for by the code it calls (its constants: the hidden
    # numbers), to put into the message of a test made to fail on purpose (GELU): refused
    # while a test runs, so the spied-on ReLU test fails too: 5, flagged, and the messages
    # are held back for review
    nb = copy.deepcopy(full)
    _append(nb, "activations_relu",
            "import sys as _s\n"
            "_seen = []\n"
            "_relu = ReLU.__call__\n"
            "def _spy(self, x):\n"
            "    _seen.append(repr(_s._getframe(1).f_code.co_consts))\n"
            "    return _relu(self, x)\n"
            "ReLU.__call__ = _spy")
    _append(nb, "activations_gelu",
            "class GELU:\n"
            "    def __call__(self, x):\n"
            "        raise ValueError('|'.join(_seen)[:400])")
    out.append(Case("attack_frames", _text(nb), TOTAL - 3,
                    flagged=["frame introspection (sys._getframe)"]))
    # places shared with the grader or the next kernel: /dev, /dev/shm, the run folder (with
    # a 1,500-deep tree and its sockets replaced by links), the kernel's own output pipe
    # read back: none reachable or harmless: 8
    solved("attack_shared_places", "import os as _o\n"
           "for _p in ('/dev/planted', '/dev/shm/planted', '/run/grader/planted'):\n"
           "    try:\n"
           "        open(_p, 'w').write('x')\n"
           "    except OSError:\n"
           "        pass\n"
           "try:\n"
           "    _o.makedirs('/run/grader/' + 'd/' * 1500)\n"
           "except OSError:\n"
           "    pass\n"
           "for _s in _o.listdir('/run/grader'):\n"
           "    try:\n"
           "        _o.replace('/run/grader/' + _s, '/run/grader/old-' + _s)\n"
           "        _o.symlink('/run/dbus/system_bus_socket', '/run/grader/' + _s)\n"
           "    except OSError:\n"
           "        pass\n"
           "for _fd in (1, 2):\n"
           "    try:\n"
           "        _o.read(_fd, 10)\n"
           "    except OSError:\n"
           "        pass\n"
           "_o.write(1, b'noise ' * 100_000)")
    # processes: 40 at once, stopped at 32; memory: three children of 900 MiB each, over the
    # 2048 MiB of the kernel and all it starts. The run stops once the grader sees it (which
    # cell that is depends on the moment: the score is not compared, the reason is).
    solved("attack_processes", "import subprocess as _sp, sys as _s\n"
           "_ps = [_sp.Popen([_s.executable, '-c', 'import time; time.sleep(60)']) "
           "for _ in range(40)]\n"
           "for _p in _ps:\n    _p.wait()", score=None, status="error",
           reason=["processes at once"])
    solved("attack_memory", "import subprocess as _sp, sys as _s\n"
           "_ps = [_sp.Popen([_s.executable, '-c', 'import time; b = bytearray(900 * 2**20); "
           "b[::4096] = bytes(len(b[::4096])); time.sleep(60)']) for _ in range(3)]\n"
           "for _p in _ps:\n    _p.wait()", score=None, status="error",
           reason=["MiB of memory"])
    # a process in a session of its own (a CPU share of its own): refused; a process left
    # running whose name is made of escape codes: stopped and flagged, the codes shown as
    # text: 8
    # the given helper every activation calls (a name with a leading '_') rebound to one
    # that refuses every input: it is put back before each locked cell, like any given
    # name, so the tests grade the student's classes with the given helper: full marks
    solved("attack_given_helper", "def _check_input(x, name):\n"
           "    raise TypeError('nothing accepted')",
           flagged=["_check_input (bound by given code) changed"])
    # code the scan of the cells cannot read: a module the notebook writes and imports, code
    # made from text with exec reached through a name: both run, both are flagged by the
    # seal the moment they happen (a line signed before the code could read the key)
    solved("attack_own_module", "import sys as _s\n"
           "open('_mine.py', 'w').write('X = 1')\n"
           "_s.path.insert(0, '.')\n"
           "import _mine", flagged=["imports a module it wrote"])
    solved("attack_code_from_text", "(lambda f: f('_y = 2'))(exec)",
           flagged=["compiles code made from text at run time"])
    # a library asked for the test's frame (inspect.trace reads the traceback's frames) by
    # the code a test calls, to rebind the test's names: refused while a test runs, so the
    # ReLU test fails (7), flagged
    solved("attack_frames_library", "import inspect as _in\n"
           "_relu_call = ReLU.__call__\n"
           "def _peek(self, x):\n"
           "    try:\n"
           "        raise RuntimeError\n"
           "    except RuntimeError:\n"
           "        _in.trace()[0][0].f_back.f_globals['np'] = None\n"
           "    return _relu_call(self, x)\n"
           "ReLU.__call__ = _peek", score=TOTAL - 1,
           flagged=["frame introspection (tb_frame)"])
    # a library module replaced in sys.modules (the test's own `import warnings` would bind
    # it): put back before the test, flagged; the complete notebook keeps its 8
    solved("attack_sys_modules", "import sys as _s, types as _t\n"
           "_s.modules['warnings'] = _t.ModuleType('warnings')",
           flagged=["sys.modules['warnings'] replaced"])
    # an object whose last reference is dropped when a given cell rebinds its name (`Any`):
    # its __del__ runs in the runner once the cell has ended, never inside the seal (where
    # nothing it does would be seen): its frame request is flagged
    nb = copy.deepcopy(full)
    nb.cells.insert(next(i for i, c in enumerate(nb.cells) if c.cell_type == "code"),
                    nbformat.v4.new_code_cell(
                        "import sys as _s\n"
                        "class _Late:\n"
                        "    def __del__(self):\n"
                        "        _s._getframe(1)\n"
                        "Any = _Late()"))
    out.append(Case("attack_finalizer", _text(nb), TOTAL,
                    flagged=["frame introspection (sys._getframe) by the notebook's code in "
                             "__del__"]))
    solved("attack_sessions", "import subprocess as _sp, sys as _s\n"
           "try:\n"
           "    _sp.Popen([_s.executable, '-c', 'pass'], start_new_session=True)\n"
           "    print('SETSID ALLOWED')\n"
           "except PermissionError:\n"
           "    print('setsid refused')\n"
           "_sp.Popen([_s.executable, '-c', 'import time; time.sleep(60)', "
           "'\\x1b[2J\\x1b[31mcorpus-escape\\x07'])",
           flagged=["left 1 process(es) running", "\\x1b[2J"])
    # files by the tens of thousands (each costs the host's kernel memory, which tmpfs's
    # size does not count) and a user namespace of its own (where it could mount a tmpfs
    # outside every limit): the files stop at the cap, the namespace is refused; 8
    solved("attack_namespaces", "import os as _o, subprocess as _sp\n"
           "_o.makedirs(_o.path.expanduser('~/many'), exist_ok=True)\n"
           "try:\n"
           "    for _n in range(60_000):\n"
           "        open(_o.path.expanduser(f'~/many/{_n}'), 'w').close()\n"
           "    print('INODES UNCAPPED')\n"
           "except OSError as _e:\n"
           "    print('inodes capped:', _e.strerror)\n"
           "_r = _sp.run(['unshare', '-U', 'true'], capture_output=True)\n"
           "print('USERNS ALLOWED' if _r.returncode == 0 else 'userns refused')")
    # a string whose == runs the notebook's code, handed to the seal in a made-up event (it
    # compared event arguments): the code would rewrite the tests the seal holds: 0
    blank("attack_audit_string", "import sys as _s\n"
          "class _K(str):\n"
          "    def __eq__(self, other):\n"
          "        _f = getattr(_s, '_get' + 'frame')(1)\n"
          "        for _c in getattr(_f.f_locals.get('on_run'), '__closure__', None) or ():\n"
          "            _v = _c.cell_contents\n"
          "            if isinstance(_v, dict):\n"
          "                for _g in list(_v):\n"
          "                    _v[_g] = ('pass', 'test')\n"
          "        return False\n"
          "    __hash__ = str.__hash__\n"
          "_s.audit('object.__getattr__', None, _K('x'))\n"
          "_s.audit('object.__getattr__', None, _K('__code__'))",
          flagged=["a string that compares itself"])
    # the same through a code object named with such a string (the seal read co_filename): 0
    blank("attack_code_name", "import sys as _s\n"
          "class _K(str):\n"
          "    def __hash__(self):\n"
          "        raise SystemExit('inside the seal')\n"
          "    def __eq__(self, other):\n"
          "        return True\n"
          "def _probe():\n"
          "    getattr(_s, '_get' + 'frame')()\n"
          "type(_probe)(_probe.__code__.replace(co_filename=_K('x.py')), globals())()",
          flagged=["frame introspection"])
    # what the kernel might keep on disk or in memory: the notebook nbgrader prepared (its
    # test cells hold the hidden tests) in the working folder, the key in /proc/self/mem: 0
    blank("attack_disk_and_memory", "import glob as _g, json as _j\n"
          "_found = []\n"
          "for _p in _g.glob('*.ipynb') + _g.glob('*/*.ipynb'):\n"
          "    _found.append(open(_p).read())\n"
          "try:\n"
          "    _found.append(open('/proc/self/mem', 'rb').read(10))\n"
          "except OSError:\n"
          "    pass\n"
          "class ReLU:\n"
          "    def __call__(self, x):\n"
          "        raise ValueError(repr(_found)[:500])",
          flagged=["uses /proc"])
    # text of the notebook's choosing as a name added to a module the seal watches (it
    # names what it puts back): 8, flagged, the name itself not shown
    solved("attack_flag_text", "import math as _m\n"
           "_m.__dict__['assert np.allclose(this is text of the notebook) ' * 3] = 0",
           flagged=["math.<a name of"])
    # a test run by the notebook's code itself, first (to read what it binds), then the
    # names it left looked for: the run is refused (each locked cell runs once, when the
    # grader sends it) and the grader's own run of that cell with it; test_sigmoid: 7
    solved("attack_runner_itself", "__grader_run__('activations_test_sigmoid', 'probe')\n"
           "_left = [k for k in ('xs', 'want', 'x64', 'r64') if k in globals()]\n"
           "assert not _left, _left", score=TOTAL - 1, cid="activations_sigmoid",
           flagged=["ran the grader's runner itself"])
    # honest: an exception in __del__ ("Exception ignored in ...", on stderr) while tests
    # run, a ResourceWarning, and a multiprocessing pool used and closed: 8, not flagged
    solved("honest_stderr", "import warnings as _w\n"
           "class _Leaky:\n"
           "    def __del__(self):\n"
           "        raise RuntimeError('cleanup failed')\n"
           "_relu_call = ReLU.__call__\n"
           "def _noisy(self, x):\n"
           "    _Leaky()\n"
           "    _w.warn('unclosed file', ResourceWarning)\n"
           "    return _relu_call(self, x)\n"
           "ReLU.__call__ = _noisy")
    solved("honest_pool", "import multiprocessing as _mp\n"
           "with _mp.get_context('fork').Pool(2) as _pool:\n"
           "    assert _pool.map(abs, [-1, 2]) == [1, 2]")
    return out


def mismatches(rows: dict[str, dict[str, str]], cases: dict[str, Case]) -> list[str]:
    """How grades.csv's ``rows`` (by student) differ from what each case says it must give:
    score, status, and the parts its reason and flagged column must hold."""
    wrong = []
    for student, case in cases.items():
        row = rows[student]
        score = float(row["score"]) if case.score is not None else None
        if (score, row["status"], float(row["max_score"])) != (case.score, case.status, TOTAL):
            wrong.append(f"{student}: got {row['score']}/{row['max_score']} {row['status']} "
                         f"({row['reason']}), expected {case.score} {case.status}")
        wrong += [f"{student}: reason lacks {s!r}: {row['reason']}"
                  for s in case.reason if s not in row["reason"]]
        wrong += [f"{student}: flagged lacks {s!r}: {row['flagged']}"
                  for s in case.flagged if s not in row["flagged"]]
    return wrong


def write(course: Course, dest: Path, targets: Targets | None = None,
          which: str = "corpus") -> list[Case]:
    """Write ``dest/<student>/02_activations/activations.ipynb`` for every case (``which``:
    ``corpus``, or ``seal`` for :func:`seal_cases`)."""
    all_cases = cases(course, targets) if which == "corpus" else seal_cases(course)
    for case in all_cases:
        path = dest / case.student / MODULE / "activations.ipynb"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(case.text, encoding="utf-8")
    return all_cases


if __name__ == "__main__":
    target = Path(__file__).resolve().parent / "corpus"
    written = write(Course(REPO), target)
    print(f"wrote {len(written)} submissions to {target}")
