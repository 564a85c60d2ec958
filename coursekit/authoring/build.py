"""``course build``: module files -> nbgrader source notebooks and the reference package."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import nbformat
from nbformat import NotebookNode

from coursekit.course import Course, CourseError, Module
from coursekit.authoring.colab import course_colab_source
from coursekit.authoring.milestones import build_milestones
from coursekit.authoring.lint import (
    BEGIN_HIDDEN,
    BEGIN_SOLUTION,
    END_HIDDEN,
    END_SOLUTION,
    EXPORT_LINE,
    Cell,
    LintError,
    ParsedModule,
    Problem,
    fairness_warnings,
    lint,
)

CELL_ID_RE = re.compile(r"[^A-Za-z0-9_-]")
KEEP_CELL_METADATA = ("nbgrader", "tags")


def write_if_changed(path: Path, text: str) -> bool:
    """Write ``text`` to ``path`` unless it already holds exactly that; True if written."""
    data = text.encode("utf-8")
    if path.is_file() and path.read_bytes() == data:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return True


def notebook_text(nb: NotebookNode) -> str:
    """Canonical, deterministic JSON text of a notebook (sorted keys, trailing newline)."""
    text = nbformat.writes(nb, version=4)
    return text if text.endswith("\n") else text + "\n"


def source_notebook(parsed: ParsedModule) -> NotebookNode:
    """The nbgrader source notebook of a module, without volatile metadata."""
    assert parsed.notebook is not None
    nb = nbformat.v4.new_notebook()
    ks = parsed.notebook.metadata["kernelspec"]
    nb.metadata = nbformat.from_dict({
        "kernelspec": {k: ks[k] for k in ("display_name", "language", "name")},
        "language_info": {"name": ks["language"]},
    })
    used: set[str] = set()
    for i, cell in enumerate(parsed.notebook.cells):
        meta = {k: cell.metadata[k] for k in KEEP_CELL_METADATA if k in cell.metadata}
        if cell.cell_type == "markdown":
            new = nbformat.v4.new_markdown_cell(cell.source, metadata=meta)
        else:
            new = nbformat.v4.new_code_cell(cell.source, metadata=meta)
        gid = meta.get("nbgrader", {}).get("grade_id")
        base = CELL_ID_RE.sub("-", gid)[:60] if gid else f"cell-{i:03d}"
        cid, k = base, 1
        while cid in used:
            k += 1
            cid = f"{base}-{k}"
        used.add(cid)
        new["id"] = cid
        nb.cells.append(new)
    # Colab starts with no tinytorch: a read-only cell after the title installs it there
    # (and does nothing anywhere else). Written here, from course.toml's student
    # repository, so the slug is not repeated in every module.
    first_code = next((i for i, c in enumerate(nb.cells) if c.cell_type == "code"), len(nb.cells))
    nb.cells.insert(first_code, colab_cell(parsed.module.name, parsed.module.root))
    # The student's own package: the last cell exports the code written in the notebook
    # (tinytorch.mine), for the milestones. Written here, so that no module repeats it.
    nb.cells.extend(mine_cells(parsed.module))
    # Handing it in: the very last cell submits the notebook to the course's grading
    # service (tinytorch.submit), or says how the course collects work.
    nb.cells.extend(submit_cells(parsed.module))
    nbformat.validate(nb)
    return nb


def mine_cells(module: Module) -> list[NotebookNode]:
    """The last two cells of a module's notebook: what the export is, and the locked cell
    that runs it (:func:`tinytorch.make_mine`; it does nothing when the notebook is graded,
    where the package has no ``tinytorch.mine``)."""
    text = nbformat.v4.new_markdown_cell(
        "## Your own tinytorch\n"
        "\n"
        "Once every test above passes, save the notebook (Ctrl-S) and run the cell below. It "
        "runs the saved notebook again in a fresh kernel and, if every cell runs and every "
        "visible test passes, copies the code you wrote in it (its `#| export` cells) into "
        "`mine/`, your own package, which git never tracks. The milestones in `milestones/` "
        "run on your modules there, and on the course's reference code for the others. In a "
        "terminal, `python -m tinytorch.mine` does the same for every completed notebook.")
    text["id"] = f"{module.name}-mine-text"
    grade_id = f"{module.name}_mine"
    cell = nbformat.v4.new_code_cell(
        "import tinytorch\n"
        "\n"
        f'tinytorch.make_mine("{module.folder}")',
        metadata={"nbgrader": {"grade": False, "grade_id": grade_id, "locked": True,
                               "schema_version": 3, "solution": False, "task": False}})
    cell["id"] = grade_id.replace("_", "-")
    return [text, cell]


def submit_cells(module: Module) -> list[NotebookNode]:
    """The notebook's last two cells: how to hand it in, and the locked cell that submits it
    (:func:`tinytorch.submit_for_grading`). When the notebook is graded, validated or run by
    ``tinytorch.mine`` it only prints a line: the grader's package has no
    ``tinytorch.submit``, and a notebook run by a tool asks no one for input."""
    text = nbformat.v4.new_markdown_cell(
        "## Submit for grading\n"
        "\n"
        "When you want your work graded, run the cell below. It saves this notebook and sends "
        "it to the course's grading service, which grades it as your instructor does (the "
        "hidden tests included) and answers within seconds with your score, each failed "
        "test with its message, and a link to the feedback page. The first time, it asks "
        "for the token your course gave you and keeps it in your home folder, never in the "
        "notebook. You may submit again; the course's rules say how often and which "
        "submission counts. If your course collects notebooks another way, the cell says "
        "how. In a terminal, `python -m tinytorch.submit NOTEBOOK` does the same.")
    text["id"] = f"{module.name}-submit-text"
    grade_id = f"{module.name}_submit"
    cell = nbformat.v4.new_code_cell(
        "import tinytorch\n"
        "\n"
        f'tinytorch.submit_for_grading("{module.folder}")',
        metadata={"nbgrader": {"grade": False, "grade_id": grade_id, "locked": True,
                               "schema_version": 3, "solution": False, "task": False}})
    cell["id"] = grade_id.replace("_", "-")
    return [text, cell]


def colab_cell(name: str, root: Path) -> NotebookNode:
    """The locked Colab set-up cell of module `name`.

    Its source is :func:`coursekit.authoring.colab.course_colab_source` of the course
    (the student repository named in ``course.toml``).
    """
    grade_id = f"{name}_colab_setup"
    cell = nbformat.v4.new_code_cell(course_colab_source(root), metadata={"nbgrader": {
        "grade": False, "grade_id": grade_id, "locked": True, "schema_version": 3,
        "solution": False, "task": False,
    }})
    cell["id"] = grade_id.replace("_", "-")
    return cell


def export_text(parsed: ParsedModule) -> str:
    """The reference-package file of a module: its ``#| export`` cells, solutions included."""
    module = parsed.module
    chunks = []
    for cell in parsed.cells:
        if not cell.is_export:
            continue
        lines = [
            text for _, text in cell.body
            if text.strip() not in (EXPORT_LINE, BEGIN_SOLUTION, END_SOLUTION)
        ]
        while lines and not lines[0].strip():
            lines.pop(0)
        while lines and not lines[-1].strip():
            lines.pop()
        if lines:
            chunks.append("\n".join(line.rstrip() for line in lines))
    banner = (
        f'"""Generated from {module.rel_source} by `course build`; do not edit.\n\n'
        f"Change the module file and run `course build --module {module.number}`.\n"
        '"""\n'
    )
    body = "\n\n\n".join(chunks)
    return banner + ("\n" + body + "\n" if body else "")


class BuildError(LintError):
    """Code cells that do not compile; nothing was written."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__(problems)
        lines = "\n".join(f"  {p}" for p in problems)
        CourseError.__init__(self, f"{len(problems)} code cell(s) do not compile; nothing was "
                             f"written:\n{lines}")


def _module_lines(cell: Cell, *, student: bool) -> str:
    """A code cell's text placed at its own line numbers of the module file (other lines
    blank), so a compile error's line is the module file's line.

    ``student``: the cell as students get it: each solution region replaced by the stub,
    hidden-test regions removed (nbgrader's release).
    """
    lines = [""] * (max((n for n, _ in cell.body), default=0))
    region: str | None = None
    for lineno, text in cell.body:
        stripped = text.strip()
        if student and stripped in (BEGIN_SOLUTION, BEGIN_HIDDEN):
            region = stripped
            if stripped == BEGIN_SOLUTION:
                indent = text[: len(text) - len(text.lstrip())]
                lines[lineno - 1] = indent + "raise NotImplementedError()"
            continue
        if student and region and stripped in (END_SOLUTION, END_HIDDEN):
            region = None
            continue
        if region is None or not student:
            lines[lineno - 1] = text
    return "\n".join(lines) + "\n"


def compile_problems(parsed: ParsedModule) -> list[Problem]:
    """Every code cell of a module that does not compile: as written (solutions, visible and
    hidden tests) and as released to students (stubs in place of solutions, hidden tests
    removed); located at the module file's line."""
    problems: list[Problem] = []
    path = parsed.module.rel_source
    for cell in parsed.cells:
        if cell.cell_type != "code" or not cell.body:
            continue
        for student in (False, True):
            text = _module_lines(cell, student=student)
            try:
                compile(text, path, "exec")
            except SyntaxError as exc:
                where = ("" if not student else " in the student's version (solutions "
                         "replaced by the stub, hidden tests removed)")
                problems.append(Problem(path, exc.lineno or cell.header_line,
                                        f"does not compile{where}: {exc.msg}"))
                break
    return problems


def check_export(rel: str, text: str, module: Module) -> None:
    """Fail if the exported file does not compile."""
    try:
        compile(text, rel, "exec")
    except SyntaxError as exc:
        raise CourseError(
            f"{rel}:{exc.lineno}: the code exported from {module.rel_source} does not "
            f"compile: {exc.msg}; fix the '#| export' cells of the module") from None


def check_imports(course_root: Path, exports: dict[Module, str]) -> None:
    """Import every new export from a scratch copy of the package (nothing written yet)."""
    with tempfile.TemporaryDirectory(prefix="course-build-") as tmp:
        scratch = Path(tmp)
        package = course_root / "tinytorch"
        if package.is_dir():
            shutil.copytree(package, scratch / "tinytorch",
                            ignore=shutil.ignore_patterns("__pycache__"))
        for module, text in exports.items():
            dest = scratch / "tinytorch" / "core" / f"{module.name}.py"
            dest.parent.mkdir(parents=True, exist_ok=True)
            for init in (dest.parent / "__init__.py", dest.parent.parent / "__init__.py"):
                if not init.exists():
                    init.write_text("", encoding="utf-8")
            dest.write_text(text, encoding="utf-8")
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            [str(scratch), *filter(None, [os.environ.get("PYTHONPATH")])]), MPLBACKEND="Agg",
            PYTHONDONTWRITEBYTECODE="1")
        for module in exports:
            dotted = "tinytorch.core." + module.name
            proc = subprocess.run(
                [sys.executable, "-c", f"import {dotted}"], cwd=scratch, env=env,
                capture_output=True, text=True, timeout=120,
            )
            if proc.returncode != 0:
                err = proc.stderr.strip().splitlines()
                tail = err[-1] if err else "no message"
                raise CourseError(f"tinytorch/core/{module.name}.py (from {module.rel_source}): "
                                  f"`import {dotted}` fails: {tail}")


def build(
    course: Course,
    wanted: list[str] | None = None,
    out_root: Path | None = None,
    *,
    check_import: bool = True,
    log: Callable[[str], None] = print,
) -> list[Module]:
    """Lint, compile-check, then build the chosen modules (all by default); return them.

    Nothing is written unless every chosen module lints and every code cell compiles (as
    written and as students get it) and, with ``check_import``, every export imports.
    ``out_root`` redirects the outputs (for ``course check``); default is the course root.
    """
    modules = course.select(wanted)
    if not wanted:
        for missing in course.missing_files():
            log(f"build: skipping {missing} (file does not exist yet)")
    if not modules:
        raise CourseError(f"{course.root}/modules: no module files found")
    log(f"lint {', '.join(m.folder for m in modules)}")
    parsed = lint(course, modules)
    problems = [p for m in modules for p in compile_problems(parsed[m.folder])]
    if problems:
        raise BuildError(problems)
    outputs: dict[Module, tuple[str, str]] = {}
    for module in modules:
        exp = export_text(parsed[module.folder])
        check_export(f"tinytorch/core/{module.name}.py", exp, module)
        outputs[module] = (notebook_text(source_notebook(parsed[module.folder])), exp)
    if check_import:
        check_imports(course.root, {m: exp for m, (_, exp) in outputs.items()})
    root = out_root or course.root
    for module, (nb_text, exp) in outputs.items():
        target = Module(module.number, module.name, root)
        changed = [write_if_changed(target.source_notebook, nb_text),
                   write_if_changed(target.export, exp)]
        log(f"build {module.folder}: source_notebooks/{module.folder}/{module.notebook_name}, "
            f"tinytorch/core/{module.name}.py ({'updated' if any(changed) else 'unchanged'})")
    if out_root is None:
        build_milestones(course, log)
        fairness_report([parsed[m.folder] for m in modules], log)
        ruff_report([m.export for m in modules], course.root, log)
    return modules


def fairness_report(parsed: list[ParsedModule], log: Callable[[str], None] = print) -> int:
    """Print the fairness warnings of the lint (they never stop a build); return how many."""
    found = [w for p in parsed for w in fairness_warnings(p)]
    if found:
        log(f"build: warning: {len(found)} test(s) may be unfair to students "
            "(see modules/AUTHORING.md, \"Fair tests\"):")
        for warning in found:
            log(f"  {warning}")
    return len(found)


def ruff_report(paths: list[Path], root: Path, log: Callable[[str], None] = print) -> None:
    """Print ruff's findings on exported files as warnings (they come from the module cells)."""
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "ruff", "check", "--quiet", "--output-format", "concise",
             *[str(p.relative_to(root)) for p in paths if p.is_file()]],
            cwd=root, capture_output=True, text=True, timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired):
        return
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    if proc.returncode not in (0, 1) or not lines:
        return
    log(f"build: warning: ruff finds {len(lines)} issue(s) in the exported code "
        "(fix them in the '#| export' cells of the module):")
    for line in lines:
        log(f"  {line}")
