"""Runs inside a grading kernel: output cap and restoring replaced library functions.

Loaded by :mod:`coursekit.grading.execution.kernel.launcher` (never imported by the grader itself).

* :class:`CappedOutStream` keeps at most ``COURSEKIT_OUTPUT_BYTES`` characters of
  stdout/stderr per executed cell (fd-level output too: ipykernel routes it through
  ``write``); the rest is dropped in the kernel, so a cell printing 100 MB never
  reaches the grader.
* The IPython extension snapshots the functions tests rely on (``numpy.allclose``,
  ``numpy.testing.*``, ``math.isclose``, builtins such as ``abs`` and ``isinstance``)
  and, before every cell, puts back any that were replaced, also the notebook's own
  ``np``/``math`` names and shadowed builtins. Each repair is appended to the report file
  ``COURSEKIT_GUARD_REPORT`` (one JSON object a line) for the instructor's review.
"""

from __future__ import annotations

import builtins
import json
import os
from typing import Any

from ipykernel.iostream import OutStream

NOTICE = "\n[output cut by the grader after {n} characters]\n"

NUMPY_NAMES = ("allclose", "isclose", "array_equal", "array_equiv", "asarray", "array",
               "abs", "all", "any", "isfinite", "max", "shares_memory")
TESTING_NAMES = ("assert_allclose", "assert_array_equal", "assert_array_almost_equal",
                 "assert_equal", "assert_almost_equal", "assert_array_less")
BUILTIN_NAMES = ("abs", "isinstance", "issubclass", "float", "int", "bool", "len", "all",
                 "any", "round", "type", "max", "min", "sum", "AssertionError", "print", "str")
SHADOW_NAMES = ("abs", "isinstance", "float", "all", "any", "AssertionError")


class CappedOutStream(OutStream):
    """An ipykernel ``OutStream`` that keeps at most N characters per request."""

    def write(self, string: str) -> int | None:  # type: ignore[override]
        cap = int(os.environ.get("COURSEKIT_OUTPUT_BYTES", "0") or 0)
        if not cap or not isinstance(string, str):
            return super().write(string)
        key = self.parent_header.get("msg_id")
        if getattr(self, "_ck_key", None) != key:
            self._ck_key, self._ck_used, self._ck_cut = key, 0, False
        room = cap - self._ck_used
        if room > 0:
            part = string[:room]
            self._ck_used += len(part)
            super().write(part)
        if len(string) > max(room, 0) and not self._ck_cut:
            self._ck_cut = True
            super().write(NOTICE.format(n=cap))
            _report({"kind": "output_cut", "stream": self.name, "cap": cap})
        return len(string)


def _report(event: dict[str, Any]) -> None:
    path = os.environ.get("COURSEKIT_GUARD_REPORT")
    if not path:
        return
    try:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(event) + "\n")
    except OSError:
        pass


class Guard:
    """Snapshot of the watched functions; :meth:`restore` runs before every cell."""

    def __init__(self, shell: Any) -> None:
        import math

        import numpy
        import numpy.testing

        self.shell = shell
        self.modules = {"numpy": numpy, "numpy.testing": numpy.testing, "math": math,
                        "builtins": builtins}
        self.saved: list[tuple[Any, str, str, Any]] = []
        for label, mod, names in (("numpy", numpy, NUMPY_NAMES),
                                  ("numpy.testing", numpy.testing, TESTING_NAMES),
                                  ("math", math, ("isclose", "isfinite", "fabs")),
                                  ("builtins", builtins, BUILTIN_NAMES)):
            for name in names:
                if hasattr(mod, name):
                    self.saved.append((mod, label, name, getattr(mod, name)))
        self.reported: set[str] = set()

    def _note(self, what: str) -> None:
        if what not in self.reported:
            self.reported.add(what)
            _report({"kind": "guard", "what": what})

    def restore(self, *args: Any) -> None:
        """Put back every replaced function, module and shadowed name."""
        import sys

        for label, mod in self.modules.items():
            if sys.modules.get(label) is not mod:
                sys.modules[label] = mod
                self._note(f"sys.modules[{label!r}] replaced")
        for mod, label, name, original in self.saved:
            if getattr(mod, name, None) is not original:
                setattr(mod, name, original)
                self._note(f"{label}.{name} replaced")
        ns = self.shell.user_ns
        for alias, label in (("np", "numpy"), ("math", "math")):
            if alias in ns and ns[alias] is not self.modules[label]:
                ns[alias] = self.modules[label]
                self._note(f"the notebook's name {alias!r} rebound (not the {label} module)")
        for name in SHADOW_NAMES:
            if name in ns and ns[name] is not getattr(builtins, name):
                del ns[name]
                self._note(f"builtin {name!r} shadowed by the notebook")


def load_ipython_extension(ipython: Any) -> None:
    """IPython extension entry point: restore before every cell."""
    guard = Guard(ipython)
    ipython.events.register("pre_run_cell", guard.restore)
