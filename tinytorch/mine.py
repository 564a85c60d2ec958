"""Your own tinytorch: the code you wrote in your notebooks, as a package of your own.

Every notebook of the course imports the earlier modules from the reference code, so that
each one is graded on its own. Once a notebook is complete, this tool copies the code you
wrote in it (its ``#| export`` cells, as the course exports the reference solutions) into
``mine/``, a package of your own next to ``tinytorch/`` that git never tracks: a
``git pull`` or a new version of the course never touches it. The milestones in
``milestones/`` then run on your modules, and on the reference code for the others::

    python -m tinytorch.mine                # every completed notebook under release/
    python -m tinytorch.mine 03             # one module (03, layers, 03_layers) ...
    python -m tinytorch.mine layers.ipynb   # ... or a notebook file (Colab: upload it first)
    python -m tinytorch.mine --list         # which modules are yours
    python -m tinytorch.mine --remove 03    # back to the reference code for module 03

The last cell of every notebook does the same for its own module. A notebook is exported
only if it runs from top to bottom in a fresh kernel and every visible test in it passes;
otherwise nothing changes, and the reason is printed.

:func:`framework_files` and :func:`loaded` choose, for each module, your file or the
reference one, and import them as ``tinytorch.core.<name>`` (:mod:`tinytorch.milestone`
uses them).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import hashlib
import importlib
import importlib.abc
import importlib.util
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

#: The file that marks the root of a student repository (written by the course's publisher).
MARKER = ".course-publish.json"
#: Your package, in the root of the student repository (else in the current folder).
MINE = "mine"
#: What was exported when, from which notebook (in ``mine/``).
RECORD = "exported.json"
EXPORT_LINE = "#| export"
#: What a solution cell holds until it is written.
STUB_MARK = "YOUR CODE HERE"
#: Set while a notebook is being run for an export (its own export cell then does nothing).
EXPORTING = "TINYTORCH_MINE_EXPORTING"
#: Seconds a cell may run while a notebook is checked.
CELL_TIMEOUT = 600
_FOLDER_RE = re.compile(r"^(\d\d)_([a-z][a-z0-9_]*)$")


class Refused(Exception):
    """A notebook that is not exported; the message says why."""


# -- where things are ------------------------------------------------------------------------


def student_repository(start: Path | None = None) -> Path | None:
    """The root of the student repository that holds ``start`` (default: the current
    folder), else the one this package is installed from; None outside one."""
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / MARKER).is_file():
            return folder
    package_root = Path(__file__).resolve().parents[1]
    return package_root if (package_root / MARKER).is_file() else None


def mine_folder(root: Path | None = None) -> Path:
    """``mine/`` in the student repository (else in the current folder, as in Colab)."""
    return (root or student_repository() or Path.cwd()) / MINE


def course_modules() -> list[str]:
    """Every module of the course, as folder names (``01_tensor``), in order."""
    core = importlib.import_module("tinytorch.core")
    listed = getattr(core, "MODULES", None)
    if listed:
        return list(listed)
    root = student_repository()
    found = sorted(p.name for p in (root / "release").iterdir()
                   if _FOLDER_RE.match(p.name)) if root and (root / "release").is_dir() else []
    if found:
        return found
    # the instructor's package: the module files of the course root it lives in
    modules = Path(core.__file__).resolve().parents[2] / "modules"
    return sorted(p.name for p in modules.iterdir()
                  if _FOLDER_RE.match(p.name)) if modules.is_dir() else []


def module_label(folder: str) -> str:
    """``module 03 (layers)`` for ``03_layers``."""
    match = _FOLDER_RE.match(folder)
    return f"module {match.group(1)} ({match.group(2)})" if match else folder


def find_module(key: str, modules: list[str] | None = None) -> str:
    """The module folder that ``key`` names: ``03``, ``3``, ``layers`` or ``03_layers``."""
    modules = modules if modules is not None else course_modules()
    key = key.strip()
    number = f"{int(key):02d}" if key.isdigit() else None
    for folder in modules:
        if key == folder or key == folder[3:] or folder[:2] == number:
            return folder
    known = ", ".join(modules) or "none found"
    raise Refused(f"{key!r} is not a module of the course (modules: {known})")


def reference_file(folder: str) -> Path | None:
    """The reference code of a module in this package, or None where it is not published
    (the module in hand and later ones)."""
    core = importlib.import_module("tinytorch.core")
    published = getattr(core, "PUBLISHED", None)
    if published is not None and folder not in published:
        return None
    path = Path(core.__file__).resolve().parent / f"{folder[3:]}.py"
    return path if path.is_file() else None


def exported(mine: Path | None = None) -> dict[str, dict[str, Any]]:
    """Your modules: folder -> what the record says (notebook, sha256, time, tests)."""
    mine = mine or mine_folder()
    try:
        record = json.loads((mine / RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        record = {}
    return {folder: info for folder, info in sorted(record.items())
            if isinstance(info, dict) and (mine / f"{folder[3:]}.py").is_file()}


# -- the code of a notebook --------------------------------------------------------------------


def _source(cell: Mapping[str, Any]) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else str(src)


def _grade_id(cell: Mapping[str, Any]) -> str | None:
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return meta.get("grade_id") if isinstance(meta, dict) else None


def _cell_name(cell: Mapping[str, Any], index: int) -> str:
    return _grade_id(cell) or str(cell.get("id") or f"#{index + 1}")


def is_export_cell(cell: Mapping[str, Any]) -> bool:
    """A code cell whose first non-blank line is ``#| export``."""
    if cell.get("cell_type") != "code":
        return False
    for line in _source(cell).splitlines():
        if line.strip():
            return line.strip() == EXPORT_LINE
    return False


def is_mine_cell(cell: Mapping[str, Any]) -> bool:
    """The export cell at the end of a notebook (it is left out when the notebook is checked)."""
    gid = _grade_id(cell) or ""
    return cell.get("cell_type") == "code" and (gid.endswith("_mine")
                                                or "make_mine(" in _source(cell))


def export_body(nb: Mapping[str, Any]) -> str:
    """The code of a notebook's export cells, as the course exports a module: each cell
    without its ``#| export`` line, blank lines at either end dropped, trailing spaces
    removed, cells separated by two blank lines."""
    chunks = []
    for cell in nb.get("cells", []):
        if not is_export_cell(cell):
            continue
        lines = [line for line in _source(cell).splitlines() if line.strip() != EXPORT_LINE]
        while lines and not lines[0].strip():
            lines.pop(0)
        while lines and not lines[-1].strip():
            lines.pop()
        if lines:
            chunks.append("\n".join(line.rstrip() for line in lines))
    return "\n\n\n".join(chunks)


def unfinished_cells(nb: Mapping[str, Any]) -> list[str]:
    """Export cells that still hold the stub (``YOUR CODE HERE``)."""
    return [_cell_name(cell, i) for i, cell in enumerate(nb.get("cells", []))
            if is_export_cell(cell) and STUB_MARK in _source(cell)]


def lost_export_cells(nb: Mapping[str, Any], released: Mapping[str, Any]) -> list[str]:
    """Export cells of the notebook as released that the student's copy no longer has as
    export cells (deleted, or the ``#| export`` line removed)."""
    theirs = {cell.get("id") for cell in nb.get("cells", []) if is_export_cell(cell)}
    return [_cell_name(cell, i) for i, cell in enumerate(released.get("cells", []))
            if is_export_cell(cell) and cell.get("id") not in theirs]


# -- running a notebook ------------------------------------------------------------------------


def first_failure(nb: Any) -> str | None:
    """Why an executed notebook fails: its first error, named by its cell; None if clean."""
    for index, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []) if cell.cell_type == "code" else []:
            if out.get("output_type") != "error":
                continue
            meta = cell.get("metadata", {}).get("nbgrader", {})
            error = f"{out.get('ename')}: {out.get('evalue')}".strip()
            if meta.get("grade"):
                return f"the visible test {_cell_name(cell, index)} fails: {error}"
            return f"cell {_cell_name(cell, index)} raises {error}"
    return None


def run_notebook(nb: Mapping[str, Any], cwd: Path, timeout: int = CELL_TIMEOUT) -> str | None:
    """Run a notebook (without its export cell) top to bottom in a fresh kernel; why it
    fails, or None when every cell runs and every visible test passes."""
    import nbclient
    import nbformat
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    runnable = nbformat.reads(json.dumps(dict(nb)), as_version=4)
    runnable.cells = [c for c in runnable.cells if not is_mine_cell(c)]
    client = nbclient.NotebookClient(runnable, timeout=timeout, kernel_name="python3",
                                     allow_errors=True,
                                     resources={"metadata": {"path": str(cwd)}})
    outer = os.environ.get(EXPORTING, "")
    os.environ[EXPORTING] = "1"  # the kernel inherits it: its export cell does nothing
    try:
        # the kernel's own log (a warning about its transport, say) is not the notebook's
        client.execute(stderr=subprocess.DEVNULL)
    except CellTimeoutError:
        return f"a cell ran longer than {timeout} s (an endless loop?)"
    except DeadKernelError as exc:
        return f"the kernel died while running the notebook ({exc})"
    finally:
        os.environ.pop(EXPORTING, None)
        if outer:
            os.environ[EXPORTING] = outer
    return first_failure(runnable)


# -- loading a framework -----------------------------------------------------------------------


class _Files(importlib.abc.MetaPathFinder):
    """Imports ``tinytorch.core.<name>`` from the file given for it."""

    def __init__(self, files: Mapping[str, Path]) -> None:
        self.files = {f"tinytorch.core.{folder[3:]}": Path(path)
                      for folder, path in files.items()}

    def find_spec(self, fullname: str, path: Any = None,
                  target: Any = None) -> importlib.machinery.ModuleSpec | None:
        file = self.files.get(fullname)
        return None if file is None else importlib.util.spec_from_file_location(fullname, file)


def _core_modules() -> dict[str, ModuleType]:
    return {name: module for name, module in list(sys.modules.items())
            if name.startswith("tinytorch.core.")}


def _forget(names: list[str]) -> None:
    core = sys.modules.get("tinytorch.core")
    for name in names:
        sys.modules.pop(name, None)
        if core is not None and hasattr(core, name.rsplit(".", 1)[1]):
            with contextlib.suppress(AttributeError):
                delattr(core, name.rsplit(".", 1)[1])


def _import_all(files: Mapping[str, Path]) -> dict[str, ModuleType]:
    return {folder: importlib.import_module(f"tinytorch.core.{folder[3:]}")
            for folder in sorted(files)}


@contextlib.contextmanager
def loaded(files: Mapping[str, Path]) -> Iterator[dict[str, ModuleType]]:
    """Import each module from the file given for it (folder -> path), as
    ``tinytorch.core.<name>``, for the duration of the ``with`` block; the modules that were
    imported before are back afterwards. Yields folder -> module."""
    saved = _core_modules()
    core = importlib.import_module("tinytorch.core")
    attributes = {name: getattr(core, name.rsplit(".", 1)[1], None) for name in saved}
    _forget(list(saved))
    finder = _Files(files)
    sys.meta_path.insert(0, finder)
    try:
        yield _import_all(files)
    finally:
        sys.meta_path.remove(finder)
        _forget(list(_core_modules()))
        sys.modules.update(saved)
        for name, value in attributes.items():
            if value is not None:
                setattr(core, name.rsplit(".", 1)[1], value)


_installed: list[_Files] = []


def install(files: Mapping[str, Path]) -> dict[str, ModuleType]:
    """Import each module from the file given for it, as ``tinytorch.core.<name>``, for the
    rest of this process (a notebook's kernel), replacing what was imported before."""
    for finder in _installed:
        with contextlib.suppress(ValueError):
            sys.meta_path.remove(finder)
    _installed.clear()
    _forget(list(_core_modules()))
    finder = _Files(files)
    sys.meta_path.insert(0, finder)
    _installed.append(finder)
    return _import_all(files)


@dataclass(frozen=True)
class Choice:
    """Whose code a module of a framework is."""

    folder: str
    whose: str  # "yours", "reference" or "missing"
    path: Path | None
    note: str  # where it comes from, or why it is missing


def framework_files(folders: list[str], reference_only: bool = False,
                    mine: Path | None = None) -> dict[str, Choice]:
    """For each module: your exported code where there is some (unless ``reference_only``),
    else the reference code where it is published, else missing (with the reason)."""
    mine = mine or mine_folder()
    yours = exported(mine)
    choices = {}
    for folder in folders:
        own = mine / f"{folder[3:]}.py"
        reference = reference_file(folder)
        info = yours.get(folder)
        own_note = (f"{own.parent.name}/{own.name} (from {info.get('notebook')}, "
                    f"{info.get('exported', '?')})") if info else ""
        if info and (not reference_only or reference is None):
            choices[folder] = Choice(folder, "yours", own, own_note + (
                " (its reference code is not published)" if reference_only else ""))
        elif reference is not None:
            choices[folder] = Choice(folder, "reference", reference, "tinytorch/core/"
                                     f"{reference.name}")
        else:
            choices[folder] = Choice(folder, "missing", None, (
                f"its reference code is not published (it is the module in hand, or not "
                f"released yet) and you have not exported it: complete "
                f"release/{folder}/{folder[3:]}.ipynb, then run "
                f"`python -m tinytorch.mine {folder[:2]}`"))
    return choices


# -- exporting ---------------------------------------------------------------------------------


def _read_notebook(path: Path) -> dict[str, Any]:
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise Refused(f"{path}: cannot read it ({exc.strerror or exc})") from exc
    except ValueError as exc:
        raise Refused(f"{path}: not a notebook (its JSON is broken: {exc})") from exc
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        raise Refused(f"{path}: not a notebook (no cells)")
    return nb


def module_of(path: Path, modules: list[str]) -> str:
    """The module a notebook file belongs to: ``release/NN_name/name.ipynb``, or a file
    named after the module (``layers.ipynb``, ``Copy of layers.ipynb``, ``layers (1).ipynb``)."""
    if _FOLDER_RE.match(path.parent.name) and path.parent.name in modules:
        return path.parent.name
    stem = re.sub(r"^copy of ", "", path.stem.strip().lower())
    stem = re.sub(r"\s*\(\d+\)$", "", stem).strip()
    for folder in modules:
        if stem == folder[3:]:
            return folder
    raise Refused(f"{path}: cannot tell which module this notebook is (its name is none of "
                  f"{', '.join(f[3:] + '.ipynb' for f in modules)}); name the module too: "
                  f"`python -m tinytorch.mine 03 {path}`")


def released_notebook(folder: str, root: Path | None) -> Path | None:
    """The notebook of a module as the student repository has it."""
    if root is None:
        return None
    path = root / "release" / folder / f"{folder[3:]}.ipynb"
    return path if path.is_file() else None


def _header(folder: str, notebook: str, digest: str, when: str) -> str:
    return (f'"""{module_label(folder).capitalize()}: your own code, exported from {notebook}\n'
            f"(SHA-256 {digest[:16]}...) by `python -m tinytorch.mine` on {when}.\n\n"
            "Not tracked by git. The milestones import it in place of the reference code;\n"
            f"delete this file (or run `python -m tinytorch.mine --remove {folder[:2]}`) to use "
            "the reference\ncode again.\n"
            '"""\n')


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _prepare(mine: Path) -> None:
    mine.mkdir(parents=True, exist_ok=True)
    ignore = mine / ".gitignore"
    if not ignore.is_file():
        _write(ignore, "# your own package: never tracked by git\n*\n")
    readme = mine / "README.md"
    if not readme.is_file():
        _write(readme, "# Your own tinytorch\n\n"
               "The code you wrote in your completed notebooks, one file per module, exported "
               "by\n`python -m tinytorch.mine` (see `python -m tinytorch.mine --help`). The "
               "milestones in\n`milestones/` run on these modules and on the reference code "
               "for the others.\nNot tracked by git: a `git pull` never changes it.\n")


def _import_check(folder: str, candidate: Path) -> None:
    """Import the exported code as ``tinytorch.core.<name>``, with the reference code for
    the other modules; Refused when it does not import."""
    files = {f: p for f in course_modules() if f != folder
             and (p := reference_file(f)) is not None}
    files[folder] = candidate
    try:
        with loaded(files):
            pass
    except Exception as exc:  # the student's code: any error at all
        raise Refused(f"the exported code does not import ({type(exc).__name__}: {exc}); a "
                      "definition it uses may live in a cell that is not exported") from exc


def export_notebook(path: Path, folder: str | None = None, *, mine: Path | None = None,
                    timeout: int = CELL_TIMEOUT, force: bool = False,
                    log: Callable[[str], None] = print) -> bool:
    """Export the code of a completed notebook into ``mine/``; True if written, False if it
    was already (same notebook file, unless ``force``). Raises Refused saying why not."""
    path = Path(path).resolve()
    modules = course_modules()
    folder = folder or module_of(path, modules)
    label = module_label(folder)
    root = student_repository(path.parent)
    mine = mine or mine_folder(root)
    data = path.read_bytes() if path.is_file() else b""
    nb = _read_notebook(path)
    shown = os.path.relpath(path, root) if root and root in path.parents else str(path)
    digest = hashlib.sha256(data).hexdigest()
    before = exported(mine).get(folder)
    if before and before.get("sha256") == digest and not force:
        log(f"{label}: unchanged since its export on {before.get('exported')}; kept")
        return False
    left = unfinished_cells(nb)
    if left:
        raise Refused(f"not completed: {', '.join(left)} still "
                      f"{'holds' if len(left) == 1 else 'hold'} {STUB_MARK}")
    released = released_notebook(folder, root)
    if released is not None and released.resolve() != path:
        lost = lost_export_cells(nb, _read_notebook(released))
        if lost:
            raise Refused(f"the export cells {', '.join(lost)} are missing (deleted, or their "
                          f"first line {EXPORT_LINE!r} removed)")
    body = export_body(nb)
    if not body:
        raise Refused(f"no export cells (cells starting with {EXPORT_LINE!r}): is this "
                      f"the notebook of {label}?")
    log(f"{label}: running {shown} in a fresh kernel (every cell, every visible test)...")
    failure = run_notebook(nb, path.parent, timeout)
    if failure:
        raise Refused(failure)
    tests = sum(1 for c in nb["cells"] if c.get("metadata", {}).get("nbgrader", {}).get("grade"))
    when = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M")
    text = _header(folder, shown, digest, when) + "\n" + body + "\n"
    _prepare(mine)
    target = mine / f"{folder[3:]}.py"
    candidate = mine / f".{folder[3:]}.candidate.py"
    _write(candidate, text)
    try:
        _import_check(folder, candidate)
        os.replace(candidate, target)
    finally:
        candidate.unlink(missing_ok=True)
    record = {**exported(mine), folder: {"notebook": shown, "sha256": digest, "exported": when,
                                         "visible_tests": tests}}
    _write(mine / RECORD, json.dumps(record, indent=2, sort_keys=True) + "\n")
    log(f"{label}: exported to {MINE}/{target.name} (every cell ran, {tests} visible "
        f"test{'s' if tests != 1 else ''} passed)")
    return True


def remove(folder: str, mine: Path | None = None) -> bool:
    """Forget your code of a module (the reference code is used again); True if there was."""
    mine = mine or mine_folder()
    target = mine / f"{folder[3:]}.py"
    had = target.is_file()
    target.unlink(missing_ok=True)
    record = {f: info for f, info in exported(mine).items() if f != folder}
    if (mine / RECORD).is_file():
        _write(mine / RECORD, json.dumps(record, indent=2, sort_keys=True) + "\n")
    return had


def summary(mine: Path | None = None) -> str:
    """Which modules are yours, and what the others are."""
    modules = course_modules()
    yours = exported(mine)
    lines = [f"your modules ({MINE}/): "
             + (", ".join(module_label(f) for f in yours) if yours else "none yet")]
    others = [f for f in modules if f not in yours]
    if others:
        reference = [f for f in others if reference_file(f) is not None]
        missing = [f for f in others if reference_file(f) is None]
        if reference:
            lines.append("reference code for: " + ", ".join(f[:2] for f in reference))
        if missing:
            lines.append("not available yet (neither yours nor published): "
                         + ", ".join(f[:2] for f in missing))
    return "\n".join(lines)


# -- the notebooks' last cell ------------------------------------------------------------------


def export_from_notebook_cell(folder: str) -> None:
    """What the last cell of a module's notebook does: export that notebook (as saved), in a
    separate process, when it runs in JupyterLab in a student repository."""
    if os.environ.get(EXPORTING):
        return
    if "google.colab" in sys.modules:
        print("In Colab this notebook is not a file of this machine, so it cannot be exported "
              "from here. Download it (File > Download > Download .ipynb); in the milestone's "
              "Colab session, upload it and run `!python -m tinytorch.mine "
              f"{folder[3:]}.ipynb`.")
        return
    session = os.environ.get("JPY_SESSION_NAME", "")
    if not session:
        print("Nothing exported: run this cell in JupyterLab, or run "
              f"`python -m tinytorch.mine {folder[:2]}` in a terminal in your repository.")
        return
    path = Path(session)
    root = student_repository(path.parent if path.is_file() else Path.cwd())
    if root is None:
        print("Nothing exported: this notebook is not in a student repository of the course.")
        return
    if not path.is_file() or path.suffix != ".ipynb":
        path = released_notebook(folder, root) or path
    stamp = datetime.datetime.fromtimestamp(path.stat().st_mtime).strftime("%H:%M:%S")
    print(f"Exporting {path.name} as saved at {stamp} (save it first, Ctrl-S, if you changed "
          "it since).", flush=True)
    proc = subprocess.Popen([sys.executable, "-m", "tinytorch.mine", folder, str(path)],
                            cwd=root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    assert proc.stdout is not None
    for line in proc.stdout:
        print(line, end="", flush=True)
    proc.wait()


# -- command line ------------------------------------------------------------------------------


def _targets(args: list[str], modules: list[str]) -> list[tuple[str, Path | None]]:
    """(module, notebook or None) for each argument: a module, a notebook, or a module
    followed by its notebook."""
    out: list[tuple[str, Path | None]] = []
    for arg in args:
        if arg.endswith(".ipynb") or os.sep in arg or "/" in arg:
            path = Path(arg)
            if out and out[-1][1] is None:  # "03 my-copy.ipynb"
                out[-1] = (out[-1][0], path)
            else:
                out.append((module_of(path, modules), path))
        else:
            out.append((find_module(arg, modules), None))
    return out


def _all_released(root: Path | None, modules: list[str]) -> list[tuple[str, Path]]:
    found = []
    for folder in modules:
        path = released_notebook(folder, root)
        if path is None:
            candidate = Path.cwd() / f"{folder[3:]}.ipynb"
            path = candidate if candidate.is_file() else None
        if path is not None:
            found.append((folder, path))
    return found


def main(argv: list[str] | None = None) -> int:
    """``python -m tinytorch.mine``: export completed notebooks into your own package."""
    parser = argparse.ArgumentParser(
        prog="python -m tinytorch.mine",
        description="Export the code you wrote in completed notebooks into your own package "
        "mine/ (never tracked by git), which the milestones run on. A notebook is exported "
        "only if it runs top to bottom in a fresh kernel and every visible test passes. "
        "Without arguments: every completed notebook under release/ (or, outside a student "
        "repository, NAME.ipynb files in this folder).")
    parser.add_argument("what", nargs="*", metavar="MODULE_OR_NOTEBOOK",
                        help="a module (03, layers or 03_layers) or a notebook file; a module "
                        "followed by a notebook exports that notebook as the module")
    parser.add_argument("--list", action="store_true", help="say which modules are yours")
    parser.add_argument("--remove", metavar="MODULE", action="append", default=[],
                        help="forget your code of MODULE (the reference code is used again)")
    parser.add_argument("--force", action="store_true",
                        help="run and export a notebook again even if it did not change")
    parser.add_argument("--timeout", type=int, default=CELL_TIMEOUT, metavar="SECONDS",
                        help=f"longest a cell may run (default {CELL_TIMEOUT})")
    args = parser.parse_args(argv)
    if args.timeout < 1:
        print(f"tinytorch.mine: error: --timeout {args.timeout}: expected a number of seconds "
              ">= 1", file=sys.stderr)
        return 1
    root = student_repository()
    mine = mine_folder(root)
    try:
        modules = course_modules()
        if args.list:
            print(summary(mine))
            return 0
        if args.remove:
            for key in args.remove:
                folder = find_module(key, modules)
                done = remove(folder, mine)
                print(f"{module_label(folder)}: {'removed' if done else 'was not yours'}; "
                      "the reference code is used where it is published")
            print(summary(mine))
            return 0
        explicit = bool(args.what)
        targets = (_targets(args.what, modules) if explicit
                   else [(f, p) for f, p in _all_released(root, modules)])
    except Refused as exc:
        print(f"tinytorch.mine: error: {exc}", file=sys.stderr)
        return 1
    if not targets:
        print("tinytorch.mine: no notebook found: run it in your student repository, or name "
              "the notebooks (see --help)", file=sys.stderr)
        return 1
    refused = 0
    for folder, path in targets:
        label = module_label(folder)
        path = path or released_notebook(folder, root)
        if path is None:
            print(f"{label}: refused: no notebook found (release/{folder}/{folder[3:]}.ipynb); "
                  "name the file", file=sys.stderr)
            refused += 1
            continue
        try:
            if not explicit and not path.is_file():
                continue
            if not explicit and unfinished_cells(_read_notebook(path)):
                print(f"{label}: not completed yet ({STUB_MARK} left); skipped")
                continue
            export_notebook(path, folder, mine=mine, timeout=args.timeout, force=args.force)
        except Refused as exc:
            print(f"{label}: refused, nothing changed: {exc}", file=sys.stderr)
            refused += 1
    print(summary(mine))
    return 1 if refused else 0


if __name__ == "__main__":
    sys.exit(main())
