"""The review flags: what they catch, and honest code they must leave alone."""

import json
from pathlib import Path

import nbformat
import pytest

from coursekit.authoring.examples import student_notebook
from coursekit.course import Course
from coursekit.grading.execution.flags import (AGREES, PATCH_RE, agreeing_classes, is_tampering,
                                               reference_import_re, review)


@pytest.mark.parametrize("line", [
    "np.allclose = lambda *a, **k: True",
    "import numpy; numpy.testing.assert_allclose = print",
    "    np.testing.assert_array_equal = lambda *a: None",
    "builtins.isinstance = lambda *a: True",
    "setattr(np, 'allclose', f)",
])
def test_replacing_library_functions_is_flagged(line):
    assert PATCH_RE.search(line), line


@pytest.mark.parametrize("line", [
    "self.data: np.ndarray = array",          # an annotated attribute (module 01's Tensor)
    "x = np.allclose(a, b)",
    "if np.linalg.norm(g) == 0:",
    "# np.allclose = f  (a comment)",
])
def test_honest_code_is_not_flagged_as_patching(line):
    assert not PATCH_RE.search(line), line


@pytest.mark.parametrize("line", [
    "from tinytorch.core.training import Trainer",
    "import tinytorch.core.training as t",
    "from tinytorch.core import training",
    "importlib.import_module('tinytorch.core.training')",
    "exec(open('tinytorch/core/training.py').read())",
])
def test_reference_imports_are_flagged(line):
    assert reference_import_re("training").search(line), line


@pytest.mark.parametrize("line", [
    'was_training = bool(getattr(self.model, "training", True))',   # module 08's Trainer
    "from tinytorch.core.optimizers import SGD",
    "self.training = True",
])
def test_honest_code_is_not_flagged_as_a_reference_import(line):
    assert not reference_import_re("training").search(line), line


# -- results that agree with every comparison (objects of a class of the notebook's own) ------

REPO = Path(__file__).resolve().parents[2]
#: A blank module 04 with this appended to each loss cell earned 2 of 6 points computing no
#: loss at all: every comparison a test makes on what the losses return is answered by
#: these objects themselves.
LIAR = '''
class _Any:
    def __eq__(self, other): return True
    def __ne__(self, other): return False
    def __lt__(self, other): return True
    __le__ = __gt__ = __ge__ = __lt__
    def __sub__(self, other): return 0.0
    __rsub__ = __add__ = __radd__ = __mul__ = __rmul__ = __truediv__ = __rtruediv__ = __sub__
    def __abs__(self): return 0.0
    def __bool__(self): return True
    def __float__(self): return 0.0
    def __hash__(self): return 0
    def __len__(self): return 2
    def __iter__(self): return iter([_Any(), _Any()])
    def __call__(self, *a, **k): return _Any()
    def __getattr__(self, name):
        if name[:2] == "__": raise AttributeError(name)
        return _Any()
    def __array__(self, dtype=None, copy=None):
        out = np.empty((), dtype=object); out[()] = _Any(); return out


class _Result(Tensor):
    shape = property(lambda self: _Any())
    def item(self): return _Any()


class MSELoss:
    def __call__(self, predictions, targets):
        r = _Result(0.0)
        r._op, r._ctx = _Any(), _Any()
        return r
'''


def _notebooks(module):
    release = nbformat.read(module.release_notebook, as_version=4)
    source = nbformat.read(module.source_notebook, as_version=4)
    return release, source, json.loads(module.source_notebook.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def course() -> Course:
    return Course(REPO)


def _honest(course: Course):
    """(module, source notebook, who, notebook) for every module's solution as written in
    modules/NN_name/name.py and every notebook of the example class."""
    for module in course.modules():
        release, source, source_json = _notebooks(module)
        full = json.loads(json.dumps(student_notebook(release, source, "complete")))
        notebooks = {"solution": full}
        for student in sorted((REPO / "examples" / "submissions").iterdir()):
            path = student / module.folder / module.notebook_name
            try:
                notebooks[student.name] = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue  # a corrupt notebook is not graded at all
        for who, nb in notebooks.items():
            yield module, source_json, who, nb


def test_honest_solutions_define_no_agreeing_class(course: Course) -> None:
    """Every module's solution and every notebook of the example class is left alone."""
    for module, source_json, who, nb in _honest(course):
        flags = review(nb, source_json, module.name)
        assert not [f for f in flags if AGREES in f], (module.folder, who, flags)


def test_a_result_that_agrees_with_everything_is_flagged(course: Course) -> None:
    module = next(m for m in course.modules() if m.folder == "04_losses")
    release, _, source_json = _notebooks(module)
    nb = json.loads(json.dumps(release))
    for cell in nb["cells"]:
        if cell.get("id") in ("losses_mse", "losses_cross_entropy", "losses_bce"):
            cell["source"] = "".join(cell["source"]) + "\n" + LIAR
    flags = [f for f in review(nb, source_json, module.name) if AGREES in f]
    assert flags and all(is_tampering(f) for f in flags)
    any_flag = next(f for f in flags if " in _Any," in f)
    for name in ("__eq__", "__lt__", "__ge__", "__sub__", "__abs__", "__array__", "__getattr__",
                 "__iter__", "__hash__"):
        assert name in any_flag, name
    assert "__call__" not in any_flag  # module 04's losses define __call__ themselves
    assert not any(" in MSELoss," in f for f in flags)


@pytest.mark.parametrize("code, owner", [
    ("class A:\n    def __eq__(self, o): return True", "A"),
    ("class A:\n    __eq__ = lambda self, o: True", "A"),
    ("class A: pass\nA.__float__ = lambda self: 0.0", "A"),
    ("setattr(A, '__abs__', lambda self: 0)", "A"),
    ("A = type('Liar', (), {'__eq__': lambda s, o: True})", "Liar"),
])
def test_every_way_of_giving_a_class_such_a_method_is_seen(code: str, owner: str) -> None:
    flags = agreeing_classes(code, allowed={"__call__"})
    assert len(flags) == 1 and f" in {owner}, " in flags[0], flags


def test_methods_the_module_defines_itself_are_not_flagged() -> None:
    code = "class T:\n    def __sub__(self, o): ...\n    def __repr__(self): return 'T'"
    assert agreeing_classes(code, allowed={"__sub__"}) == []


def test_honest_notebooks_carry_no_sign_of_tampering(course: Course) -> None:
    """The solutions and the example class: what the module's own code does (module 03's
    given helper reads ``vars(module)``) is no sign when a student's cell does it."""
    for module, source_json, who, nb in _honest(course):
        flags = [f for f in review(nb, source_json, module.name) if is_tampering(f)]
        assert not flags, (module.folder, who, flags)


@pytest.mark.parametrize("code, found", [
    # a class attribute NumPy reads as an address to read memory at
    ("class A:\n    __array_interface__ = {'data': (0, True)}", "raw memory"),
    ("A = type('A', (), {'__array_interface__': d})", "raw memory"),
    ("import operator\nf = operator.attrgetter('f_back')", "frames"),
    # the private parts of a library bound by a given cell, not imported by this one
    ("m = np._core.numeric", "a library's private parts"),
    ("type(m).__setattr__(m, 'asanyarray', f)", "replaces library functions"),
    ("out.__class__ = Other", "an object's __class__ replaced"),
    ("hit = any(f.filename.startswith('<locked cell') for f in stack)", "grader's own code"),
])
def test_what_the_scan_sees_in_any_form(code: str, found: str) -> None:
    from coursekit.grading.execution.flags import scan

    flags = scan(code)
    assert any(found in f for f in flags), flags
    assert all(is_tampering(f"cell x {f}") for f in flags)
