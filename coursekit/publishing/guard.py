"""The leak guard over a whole student repository, run by ``course publish`` before it writes.

It looks at every file of the tree about to be published (notebooks, package, ``binder/``,
milestones, README, everything) and reports:

* any file that is not one the student repository is made of, named by what it looks
  like: a module source, a source notebook, a gradebook, a grader configuration, student
  work (example submissions, collected or graded notebooks), or just an unexpected file;
* the region markers of nbgrader (``BEGIN SOLUTION``, ``BEGIN HIDDEN TESTS``...);
* any hidden-test line of any module;
* any solution line of the module in hand or a later one. Only the modules before it,
  which students build on, may carry solution code (in the package).

Secret lines come from the nbgrader source notebooks, as in the release guard
(:mod:`coursekit.leaks`): the non-trivial lines inside solution and hidden-test regions,
minus every line that is no secret: lines visible in some module's notebook, solution lines
of the modules before the one in hand (they are in the package), imports and lines too short
or too common to tell anything.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from coursekit.course import Course, CourseError, Module
from coursekit.cells import MARKERS, is_trivial, line_regions


@dataclass(frozen=True)
class Secret:
    """Where a secret line comes from."""

    kind: str  # "hidden test" or "solution"
    module: str  # module folder, e.g. "03_layers"
    cell: str  # cell id in the source notebook


class TreeLeakError(CourseError):
    """The guard found problems; ``leaks`` lists them, nothing was written."""

    def __init__(self, leaks: list[str]) -> None:
        self.leaks = leaks
        body = "\n".join(f"  {item}" for item in leaks)
        super().__init__(f"leak guard: {len(leaks)} problem(s) in the student repository; "
                         f"nothing was written:\n{body}")


def _source_notebook(module: Module) -> dict[str, Any]:
    path = module.source_notebook
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise CourseError(f"source_notebooks/{module.folder}/{module.notebook_name}: cannot "
                          f"read it for the leak guard ({exc}); run `course build`") from exc


def tree_secrets(course: Course, through: Module) -> dict[str, Secret]:
    """Every line that must not reach a student repository released through ``through``."""
    modules = course.modules()
    parsed = {m.folder: line_regions(_source_notebook(m)) for m in modules}
    allowed: set[str] = set()
    for m in modules:
        allowed.update(parsed[m.folder]["visible"])  # shown to students somewhere: no secret
        if m.number < through.number:
            allowed.update(parsed[m.folder]["solution"])  # in the package anyway
    secrets: dict[str, Secret] = {}
    for m in modules:
        kinds = ["hidden"] + (["solution"] if m.number >= through.number else [])
        for kind in kinds:
            for line, cid in parsed[m.folder][kind].items():
                if line not in allowed and not is_trivial(line, imports=True):
                    secrets.setdefault(line, Secret(
                        "hidden test" if kind == "hidden" else "solution", m.folder, cid))
    return secrets


# -- what a file that does not belong looks like ------------------------------------------------

_STUDENT_WORK_DIRS = {"examples", "submissions", "submitted", "autograded", "feedback",
                      "grading", "nbgrader_exchange", "exchange"}
_GRADER_CONFIGS = {"grader_config.py", "nbgrader_config.py", "nbgrader_config.json",
                   "jupyter_config.py"}
_MODULE_HEADER_RE = re.compile(r"(?m)^# %%.*\bnbgrader=|^#\s+jupytext:")


def kind_of_stray(rel: str, data: bytes) -> str:
    """What an unexpected file of the tree looks like (for the message)."""
    path = PurePosixPath(rel)
    parts = set(path.parts[:-1])
    name = path.name.lower()
    text = data[:200_000].decode("utf-8", errors="replace")
    if "modules" in parts or (path.suffix == ".py" and _MODULE_HEADER_RE.search(text)):
        return "module source (solutions and hidden tests)"
    if "source_notebooks" in parts or (
            path.suffix == ".ipynb" and any(m in text for m in MARKERS)):
        return "source notebook (solutions and hidden tests)"
    if (path.suffix in {".db", ".sqlite", ".sqlite3"} or "gradebook" in name
            or data.startswith(b"SQLite format 3")):
        return "gradebook (every student's grades)"
    if name in _GRADER_CONFIGS:
        return "grader configuration"
    if parts & _STUDENT_WORK_DIRS:
        return "student work (example submissions, collected or graded notebooks)"
    return "unexpected file (not part of a student repository)"


# -- the scan -----------------------------------------------------------------------------------


def _strings(value: Any) -> Iterator[str]:
    """Every string inside a JSON value (notebook sources, outputs and metadata alike)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        if value and all(isinstance(v, str) for v in value):
            yield "".join(value)  # nbformat may store a text as a list of lines
        else:
            for v in value:
                yield from _strings(v)
    elif isinstance(value, dict):
        for k, v in value.items():
            yield str(k)
            yield from _strings(v)


def _lines(rel: str, text: str) -> Iterator[tuple[str, str]]:
    """``(where, stripped line)`` of a file's text; notebooks by the strings of their JSON."""
    if rel.endswith(".ipynb"):
        try:
            nb = json.loads(text)
        except json.JSONDecodeError:
            nb = None
        if nb is not None:
            for cell in nb.get("cells", []) if isinstance(nb, dict) else []:
                cid = cell.get("id", "?") if isinstance(cell, dict) else "?"
                for chunk in _strings(cell):
                    for line in chunk.splitlines():
                        yield f"{rel} (cell {cid!r})", line.strip()
            rest = {k: v for k, v in nb.items() if k != "cells"} if isinstance(nb, dict) else nb
            for chunk in _strings(rest):
                for line in chunk.splitlines():
                    yield f"{rel} (notebook metadata)", line.strip()
            return
    for number, line in enumerate(text.splitlines(), start=1):
        yield f"{rel}:{number}", line.strip()


_WRAPPING = " \t#<!>*-/'\"`,;"


def _unwrap(line: str) -> str:
    """A line without the comment, quote and list marks around it."""
    return line.strip(_WRAPPING)


def check_tree(files: Mapping[str, bytes], expected: set[str],
               secrets: Mapping[str, Secret],
               binary: Mapping[str, bytes] | None = None) -> list[str]:
    """Every problem of the tree ``files`` (path -> content); empty when it may be published.

    ``expected`` are the paths a student repository is made of; ``binary`` the files among
    them that are not text (the data of the milestones), each with the only bytes it may
    hold, so that nothing can hide in one.
    """
    binary = binary or {}
    leaks: list[str] = []
    # compared without what wraps a line in a comment, a quote or a list item, so that a
    # secret commented out or quoted is still found
    index = {_unwrap(line): secret for line, secret in secrets.items()}
    index.pop("", None)
    for rel in sorted(files):
        data = files[rel]
        if rel not in expected:
            leaks.append(f"{rel}: {kind_of_stray(rel, data)}")
        if rel in binary and rel in expected:
            if data != binary[rel]:
                leaks.append(f"{rel}: not the course's file (its bytes differ)")
            continue
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            if rel in expected:
                leaks.append(f"{rel}: not UTF-8 text")
            text = data.decode("latin-1")
        for marker in MARKERS:
            if marker in text:
                leaks.append(f"{rel}: contains nbgrader's region marker {marker!r}")
        reported: set[str] = set()
        for where, line in _lines(rel, text):
            key = _unwrap(line)
            secret = index.get(key)
            if secret is None or key in reported:
                continue
            reported.add(key)
            leaks.append(f"{where}: {secret.kind} line of {secret.module} "
                         f"(source cell {secret.cell!r}): {line!r}")
    return leaks


def guard_tree(files: Mapping[str, bytes], expected: set[str], course: Course,
               through: Module, binary: Mapping[str, bytes] | None = None) -> int:
    """Raise TreeLeakError naming every problem of ``files``; return how many secrets were
    looked for. ``binary``: as for :func:`check_tree`."""
    secrets = tree_secrets(course, through)
    leaks = check_tree(files, expected, secrets, binary)
    if leaks:
        raise TreeLeakError(leaks)
    return len(secrets)


def read_tree(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (``.git`` left out), by POSIX path relative to it."""
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and ".git" not in path.relative_to(root).parts
    }
