"""Flags for review: what a submission did that grading cannot undo or should not ignore.

nbgrader restores edited/deleted test cells and the seal restores replaced library
functions, so these do not change a score; an instructor still wants to know. Importing the
module's own reference file (``tinytorch.core.<name>``) cannot be stopped in general
(``Tensor.backward`` imports module 06's file on purpose), so it is flagged.

:func:`review` reads the submitted notebook against the source notebook. Besides edited,
deleted and moved test cells, it reads the notebook's own code (:func:`scan`) for what
tampering with the grader needs and an honest notebook of this course never uses: IPython's
hooks and transformers, frames and code objects, the garbage collector, ``ctypes`` and raw
memory, audit hooks, signals and threads, running code made from strings, replacing what a
library module holds. What the seal inside the kernel sees while the notebook runs is
flagged by the seal itself (:mod:`coursekit.grading.execution.kernel.seal`). Flags of
either kind (:func:`is_tampering`) hold back the failure messages of a feedback page until
an instructor has looked.
"""

from __future__ import annotations

import ast
import re
from typing import Any

from coursekit.cells import cell_source, is_test, nbgrader_meta, visible_lines

PATCH_RE = re.compile(
    r"(?m)(?:^|;)\s*(np|numpy|math|builtins|__builtins__)(\s*\.\s*\w+)+\s*=(?!=)"
    r"|\bsetattr\s*\(\s*(np|numpy|math|builtins|__builtins__)\b"
    r"|__builtins__\s*\[|\bsys\s*\.\s*modules\s*\[")
SHADOW_RE = re.compile(
    r"(?m)^\s*(def\s+(abs|isinstance|float|all|any)\s*\(|(abs|isinstance|float|all|any|np|math)"
    r"\s*=(?!=))")
EVENTS_RE = re.compile(r"\.events\s*\.\s*(unregister|callbacks)")


#: Attributes whose use in a notebook's own code reaches the interpreter under the tests.
SENSITIVE_ATTRIBUTES = {
    "_getframe": "frames", "f_back": "frames", "f_locals": "frames", "f_globals": "frames",
    "f_code": "frames", "tb_frame": "frames", "gi_frame": "frames", "cr_frame": "frames",
    "ag_frame": "frames", "currentframe": "frames", "walk_tb": "frames",
    "walk_stack": "frames", "stack": None, "getouterframes": "frames",
    "getinnerframes": "frames",
    "__code__": "code objects", "__globals__": "code objects", "__closure__": "code objects",
    "cell_contents": "code objects", "__defaults__": "code objects",
    "__kwdefaults__": "code objects", "__builtins__": "the builtins",
    "__subclasses__": "reflection", "addaudithook": "audit hooks", "settrace": "tracing",
    "setprofile": "tracing", "displayhook": "display hooks", "excepthook": "exception hooks",
    "input_transformers_cleanup": "IPython's transformers",
    "input_transformers_post": "IPython's transformers",
    "ast_transformers": "IPython's transformers", "set_custom_exc": "exception hooks",
    "events": "IPython's cell events", "as_strided": "raw memory",
    "stride_tricks": "raw memory", "ctypeslib": "raw memory", "get_referrers": "the gc",
    "get_referents": "the gc", "get_objects": "the gc", "modules": None,
    "setitimer": "signals", "pthread_kill": "signals", "shell_handlers": "IPython's kernel",
    "run_cell": "IPython's kernel", "run_code": "IPython's kernel", "audit": "audit hooks",
    "import_module": "imports made from strings", "__array_interface__": "raw memory",
    "__array_struct__": "raw memory", "trace": None,
}
#: Names the given cells bind the course's libraries to (their private parts are as
#: private as those of a module the cell imports itself).
LIBRARY_NAMES = ("np", "numpy", "math", "tinytorch")
#: Names that are a sign wherever they appear: as a class attribute, a dictionary key or a
#: string as much as an attribute (``class A: __array_interface__ = {...}``).
SENSITIVE_ANYWHERE = {"__array_interface__": "raw memory", "__array_struct__": "raw memory",
                      "_getframe": "frames", "tb_frame": "frames", "f_back": "frames",
                      "f_globals": "frames", "f_locals": "frames", "gi_frame": "frames",
                      "cell_contents": "code objects", "__closure__": "code objects"}
#: Text that only code looking for the grader has a use for.
GRADER_MARKS = ("<locked cell", "__grader_run__", "coursekit", "CKV1")
#: Modules a notebook of this course has no honest use for.
SENSITIVE_MODULES = {"ctypes": "ctypes", "gc": "the gc", "signal": "signals",
                     "_thread": "threads", "threading": "threads", "builtins": "the builtins",
                     "dis": "code objects", "marshal": "code objects", "ipykernel": "the kernel",
                     "mmap": "raw memory", "sys": None, "types": None}
#: Names whose import is the use (``from numpy.lib.stride_tricks import as_strided``).
SENSITIVE_NAMES = {"as_strided": "raw memory", "currentframe": "frames", "stack": None,
                   "getouterframes": "frames", "getinnerframes": "frames",
                   "import_module": "imports made from strings", "_getframe": "frames",
                   "addaudithook": "audit hooks", "settrace": "tracing", "setprofile": "tracing"}
#: Builtins that run code made from strings or reach a module's globals.
SENSITIVE_CALLS = {"exec": "code from strings", "eval": "code from strings",
                   "compile": "code from strings", "__import__": "imports made from strings",
                   "globals": "reflection", "vars": "reflection", "breakpoint": "the debugger"}
#: Methods (and class attributes) through which an object answers a comparison, a number
#: conversion or a container question itself: an object of a class of the notebook's own
#: that defines them could agree with any test that compares it as it is.
AGREEING = {
    "__eq__", "__ne__", "__lt__", "__le__", "__gt__", "__ge__", "__hash__", "__bool__",
    "__abs__", "__neg__", "__pos__", "__round__", "__add__", "__radd__", "__sub__",
    "__rsub__", "__mul__", "__rmul__", "__truediv__", "__rtruediv__", "__floordiv__",
    "__rfloordiv__", "__mod__", "__rmod__", "__pow__", "__rpow__", "__matmul__",
    "__rmatmul__", "__float__", "__int__", "__index__", "__complex__", "__array__",
    "__array_priority__", "__array_wrap__", "__array_finalize__", "__getattr__",
    "__getattribute__", "__call__", "__iter__", "__next__", "__len__", "__contains__",
    "__getitem__", "__instancecheck__", "__subclasscheck__"}
AGREES = "which the module's code does not: its objects could agree with any comparison"
TAMPERING = (" uses ", " replaces library functions", " redefines a name",
             " tampers with ", " refers to the grader", AGREES)
#: Flags of the seal that are no sign of tampering (what it did stays in the flag).
BENIGN = ("(not a sign of tampering)",)


def is_tampering(flag: str, from_seal: bool = False) -> bool:
    """Whether a flag is about reaching the grader: one of :func:`review` saying so, or any
    flag of the seal (``from_seal``) but those it marks as harmless."""
    if any(word in flag for word in BENIGN):
        return False
    return from_seal or any(word in flag for word in TAMPERING)


def _magic_free(text: str) -> str:
    """A cell without IPython's ``%magic`` and ``!shell`` lines (for :mod:`ast`)."""
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line
                     for line in text.splitlines())


def _root(node: ast.AST) -> str | None:
    """The name an attribute chain starts from: ``np`` for ``np.testing.x``."""
    while isinstance(node, ast.Attribute):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def _spelled_out(node: ast.AST) -> bool:
    """A name put together from pieces of text only (``"_get" + "frame"``): a way to hide
    which attribute is meant."""
    if isinstance(node, ast.BinOp):
        return _spelled_out(node.left) and _spelled_out(node.right)
    if isinstance(node, ast.JoinedStr):
        return all(isinstance(v, ast.Constant) for v in node.values)
    return isinstance(node, ast.Constant) and isinstance(node.value, str)


def scan(text: str) -> list[str]:
    """What a cell of the notebook's own code uses that tampering needs (see the module's
    docstring), as ``"uses X (how)"``; replaced library attributes as ``"replaces library
    functions (...)"``."""
    try:
        tree = ast.parse(_magic_free(text))
    except SyntaxError:
        return []
    found: list[str] = []
    # the names a notebook of this course has its libraries under (bound by given cells)
    imported: set[str] = set(LIBRARY_NAMES)
    for node in ast.walk(tree):
        # a sensitive name written anywhere: a class attribute, a dictionary key, a string
        name = (node.id if isinstance(node, ast.Name) else node.value
                if isinstance(node, ast.Constant) and isinstance(node.value, str) else None)
        if name in SENSITIVE_ANYWHERE:
            found.append(f"uses {SENSITIVE_ANYWHERE[name]} ({name})")
        elif isinstance(name, str) and any(mark in name for mark in GRADER_MARKS):
            found.append("refers to the grader's own code")
        if isinstance(node, ast.Attribute) and node.attr in ("__setattr__", "__delattr__") and (
                isinstance(node.value, ast.Call) and isinstance(node.value.func, ast.Name)
                and node.value.func.id == "type"):
            found.append(f"replaces library functions (type(...).{node.attr})")
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Attribute) and t.attr == "__class__" for t in node.targets):
            found.append("uses reflection (an object's __class__ replaced)")
        if isinstance(node, ast.Import):
            for alias in node.names:
                imported.add((alias.asname or alias.name).split(".")[0])
                what = SENSITIVE_MODULES.get(alias.name) or SENSITIVE_MODULES.get(
                    alias.name.split(".")[0])
                if what:
                    found.append(f"uses {what} (import {alias.name})")
        elif isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                imported.add(alias.asname or alias.name)
                named = SENSITIVE_NAMES.get(alias.name)
                if named:
                    found.append(f"uses {named} (from {node.module} import {alias.name})")
            what = SENSITIVE_MODULES.get(node.module) or SENSITIVE_MODULES.get(
                node.module.split(".")[0])
            names = {a.name for a in node.names}
            if node.module == "sys" and names & {"_getframe", "modules", "settrace",
                                                  "setprofile", "addaudithook"}:
                what = "the interpreter"
            if what:
                found.append(f"uses {what} (from {node.module} import ...)")
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and node.attr[:1] == "_" and node.attr[:2] != "__"
                and _root(node) in imported):
            found.append(f"uses a library's private parts (.{node.attr})")
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                and node.func.id in ("getattr", "setattr", "delattr", "hasattr")
                and len(node.args) >= 2):
            name = node.args[1]
            literal = name.value if isinstance(name, ast.Constant) else None
            if isinstance(literal, str) and SENSITIVE_ATTRIBUTES.get(literal):
                found.append(f"uses {SENSITIVE_ATTRIBUTES[literal]} ({node.func.id} "
                             f"{literal!r})")
            elif literal is None and (_root(node.args[0]) in imported or _spelled_out(name)):
                found.append(f"uses reflection ({node.func.id} with a name made at run time)")
        if isinstance(node, ast.Call) and {k.arg for k in node.keywords} & {
                "buffer", "strides"} and _root(node.func) in imported:
            found.append("uses raw memory (an array over a buffer or with strides)")
        if isinstance(node, ast.Attribute):
            what = SENSITIVE_ATTRIBUTES.get(node.attr)
            if node.attr == "modules" and _root(node) == "sys":
                what = "sys.modules"
            if node.attr == "stack" and _root(node) == "inspect":
                what = "frames"
            if what:
                found.append(f"uses {what} (.{node.attr})")
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
              and node.func.id in SENSITIVE_CALLS
              and not (node.func.id == "vars" and node.args
                       and isinstance(node.args[0], ast.Name) and node.args[0].id == "self")):
            found.append(f"uses {SENSITIVE_CALLS[node.func.id]} ({node.func.id}())")
        elif (isinstance(node, ast.Constant) and isinstance(node.value, str)
              and "/proc/" in node.value):
            found.append("uses /proc")
        elif isinstance(node, ast.ClassDef) and any(
                isinstance(b, ast.Name) and b.id in ("str", "bytes") for b in node.bases) and any(
                isinstance(f, ast.FunctionDef) and f.name in ("__eq__", "__hash__", "__ne__")
                for f in node.body):
            found.append(f"uses a string that compares itself ({node.name})")
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
              and node.func.id in ("setattr", "delattr") and node.args
              and _root(node.args[0]) in imported | {"np", "numpy", "math"}):
            found.append(f"replaces library functions ({node.func.id} on "
                         f"{_root(node.args[0])})")
        elif isinstance(node, (ast.Assign, ast.AugAssign, ast.Delete)):
            targets = node.targets if isinstance(node, (ast.Assign, ast.Delete)) else [
                node.target]
            for target in targets:
                if isinstance(target, ast.Attribute) and _root(target) in imported:
                    found.append(f"replaces library functions ({ast.unparse(target)[:60]} =)")
        elif isinstance(node, ast.FunctionDef) and node.name in ("__array_function__",
                                                                  "__array_ufunc__"):
            found.append(f"uses NumPy's dispatch ({node.name}: NumPy's comparisons can ask "
                         "the object itself)")
    return list(dict.fromkeys(found))


def _class_dunders(tree: ast.AST) -> dict[str, set[str]]:
    """The methods of :data:`AGREEING` each class of ``tree`` defines (``def``, an
    assignment in its body, ``Cls.__eq__ = ...``, ``setattr(Cls, "__eq__", ...)`` or
    ``type(name, bases, {"__eq__": ...})``), by class name."""
    found: dict[str, set[str]] = {}

    def add(owner: str, name: object) -> None:
        if isinstance(name, str) and name in AGREEING:
            found.setdefault(owner, set()).add(name)

    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    add(node.name, item.name)
                elif isinstance(item, (ast.Assign, ast.AnnAssign)):
                    targets = item.targets if isinstance(item, ast.Assign) else [item.target]
                    for target in targets:
                        for name in ast.walk(target):
                            if isinstance(name, ast.Name):
                                add(node.name, name.id)
        elif isinstance(node, (ast.Assign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                for attr in ast.walk(target):
                    if isinstance(attr, ast.Attribute):
                        add(ast.unparse(attr.value)[:40], attr.attr)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            if node.func.id == "setattr" and len(node.args) >= 2 and isinstance(
                    node.args[1], ast.Constant):
                add(ast.unparse(node.args[0])[:40], node.args[1].value)
            elif node.func.id == "type" and len(node.args) == 3 and isinstance(
                    node.args[2], ast.Dict):
                owner = node.args[0]
                label = (owner.value if isinstance(owner, ast.Constant)
                         and isinstance(owner.value, str) else "a class made by type()")
                for key in node.args[2].keys:
                    if isinstance(key, ast.Constant):
                        add(label, key.value)
    return found


def _parsed(text: str) -> ast.AST | None:
    try:
        return ast.parse(_magic_free(text))
    except SyntaxError:
        return None


def module_dunders(source: dict[str, Any]) -> set[str]:
    """The methods of :data:`AGREEING` some class of the module's own code defines (its
    solution and given cells in the source notebook; tests are not its code)."""
    defined: set[str] = set()
    for cell in source.get("cells", []):
        if cell.get("cell_type") != "code" or is_test(cell):
            continue
        tree = _parsed(cell_source(cell))
        if tree is not None:
            for names in _class_dunders(tree).values():
                defined |= names
    return defined


def module_uses(source: dict[str, Any]) -> set[str]:
    """What :func:`scan` finds in the module's own code (its solution and given cells): a
    student's cell doing the same thing (``vars(module)`` in a given helper) is no sign."""
    found: set[str] = set()
    for cell in source.get("cells", []):
        if cell.get("cell_type") == "code" and not is_test(cell):
            found.update(scan(cell_source(cell)))
    return found


def agreeing_classes(text: str, allowed: set[str]) -> list[str]:
    """Classes of a cell of the notebook's own code that define methods of
    :data:`AGREEING` no class of the module's code defines (``allowed``), as flags."""
    tree = _parsed(text)
    if tree is None:
        return []
    out = []
    for owner, names in _class_dunders(tree).items():
        extra = sorted(names - allowed)
        if extra:
            out.append(f"defines {', '.join(extra)} in {owner}, {AGREES}")
    return out


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
    allowed = module_dunders(source)
    own_uses = module_uses(source)
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
        flags += [f"{where} {item}" for item in scan(text) if item not in own_uses]
        flags += [f"{where} {item}" for item in agreeing_classes(text, allowed)]
    for gid in order_src:
        if seen.count(gid) > 1:
            flags.append(f"locked cell {gid} was there {seen.count(gid)} times (copying a cell "
                         "keeps its grade_id); one copy was graded (not a sign of tampering)")
    missing = [gid for gid in order_src if gid not in seen]
    if missing:
        flags.append("deleted locked cells " + ", ".join(missing))
    present = [gid for gid in order_src if gid in seen]
    first_seen = list(dict.fromkeys(seen))
    if first_seen != present:
        flags.append("reordered locked cells")
    return flags
