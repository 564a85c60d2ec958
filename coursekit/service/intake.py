"""What a submitted notebook must be before the service accepts it, each refusal one line
with its HTTP status.

* not over the size limit (413);
* a notebook at all: the grader's own check (:func:`coursekit.grading.execution.submission.
  precheck`: not empty, UTF-8, JSON, a valid nbformat 4 notebook), else 400;
* the module's notebook: some of its nbgrader cells are the module's (the grade ids of its
  source notebook); one of another module of the course, or of no module of it, is
  refused (422) with what it seems to be.

Test cells the student deleted are no reason to refuse: grading puts them back (and flags
the submission, as ``course grade`` does); the answer says which.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from coursekit.cells import grade_id, nbgrader_meta
from coursekit.course import Module
from coursekit.grading.execution.submission import precheck


class Refused(Exception):
    """A submission the service does not accept: the HTTP status and one line that says
    why (and, for 429 and 503, when to try again)."""

    def __init__(self, status: int, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.retry_after = retry_after


@dataclass(frozen=True)
class Cells:
    """The nbgrader cells of one module's source notebook."""

    ids: frozenset[str]  # every cell with a grade id
    tests: tuple[str, ...]  # the graded cells, in order


@dataclass
class Checked:
    """A notebook the service accepts: where it waits, what its code is, notes for the
    student."""

    folder: Path
    path: Path
    code_digest: str
    notes: list[str] = field(default_factory=list)


def module_cells(modules: list[Module]) -> dict[str, Cells]:
    """The nbgrader cells of every module (from the source notebooks)."""
    out = {}
    for module in modules:
        nb = json.loads(module.source_notebook.read_text(encoding="utf-8"))
        ids = [grade_id(c) for c in nb.get("cells", [])]
        tests = tuple(grade_id(c) for c in nb.get("cells", [])
                      if nbgrader_meta(c).get("grade") and grade_id(c))
        out[module.folder] = Cells(frozenset(i for i in ids if i), tests)  # type: ignore[misc]
    return out


def code_digest(nb: dict[str, Any]) -> str:
    """What a notebook's code is, outputs and metadata aside: two saves of the same work
    have the same digest."""
    cells = [[c.get("cell_type"), c.get("source") if isinstance(c.get("source"), str)
              else "".join(c.get("source") or [])] for c in nb.get("cells", [])
             if isinstance(c, dict)]
    return hashlib.sha256(json.dumps(cells, sort_keys=True).encode("utf-8")).hexdigest()


def _sync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def receive(data: bytes, module: Module, cells: dict[str, Cells], incoming: Path) -> Checked:
    """Write ``data`` to a folder of its own under ``incoming`` (synced to disk) and check
    it; :class:`Refused` (the folder removed) if it is not ``module``'s notebook."""
    folder = incoming / uuid.uuid4().hex
    folder.mkdir(parents=True)
    path = folder / module.notebook_name
    try:
        with open(path, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        try:
            bad = precheck(path)
            nb = None if bad else json.loads(data.decode("utf-8"))
        except RecursionError:
            raise Refused(400, "not a notebook the grader can read: its JSON is nested too "
                          "deeply") from None
        if bad or not isinstance(nb, dict):
            raise Refused(400, f"not a notebook the grader can read: {bad[1] if bad else ''}")
        notes = _belongs(nb, module, cells)
        return Checked(folder, path, code_digest(nb), notes)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise


def _belongs(nb: dict[str, Any], module: Module, cells: dict[str, Cells]) -> list[str]:
    ids = {grade_id(c) for c in nb.get("cells", []) if isinstance(c, dict) and grade_id(c)}
    mine = cells[module.folder]
    if not ids & mine.ids:
        others = sorted(((len(ids & c.ids), folder) for folder, c in cells.items()
                         if folder != module.folder and ids & c.ids), reverse=True)
        if others:
            other = others[0][1]
            raise Refused(422, f"this is the notebook of module {other}, not of "
                          f"{module.folder}: submit it as {other} (from its own notebook)")
        raise Refused(422, f"this is not a notebook of this course's module {module.folder} "
                      f"(none of its cells is one of release/{module.folder}/"
                      f"{module.notebook_name}): submit that notebook")
    missing = [t for t in mine.tests if t not in ids]
    if missing:
        shown = ", ".join(missing[:6]) + (f" and {len(missing) - 6} more" if len(missing) > 6
                                          else "")
        return [f"test cells missing from your notebook were put back before grading: "
                f"{shown} (your instructor sees that they were missing)"]
    return []


def keep(checked: Checked, dest: Path, timestamp: bytes) -> Path:
    """Move an accepted notebook to ``dest`` (its attempt's folder) with the submission time
    as nbgrader keeps it (``timestamp.txt``), synced to disk; the notebook's path."""
    stamp = checked.folder / "timestamp.txt"
    with open(stamp, "wb") as out:
        out.write(timestamp)
        out.flush()
        os.fsync(out.fileno())
    dest.parent.mkdir(parents=True, exist_ok=True)
    os.replace(checked.folder, dest)
    _sync(dest.parent)
    _sync(dest)
    return dest / checked.path.name
