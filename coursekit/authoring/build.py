"""``course build``: module files -> nbgrader source notebooks and the reference package."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import nbformat
from nbformat import NotebookNode

from coursekit.course import Course, CourseError, Module
from coursekit.authoring.colab import course_colab_source
from coursekit.authoring.lint import BEGIN_SOLUTION, END_SOLUTION, EXPORT_LINE, ParsedModule, lint

CELL_ID_RE = re.compile(r"[^A-Za-z0-9_-]")
KEEP_CELL_METADATA = ("nbgrader", "tags")


def _write_if_changed(path: Path, text: str) -> bool:
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
    nbformat.validate(nb)
    return nb


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


def check_export(path: Path, rel: str, text: str, root: Path, importable: bool) -> None:
    """Fail if the exported file does not compile (or, if asked, does not import)."""
    try:
        compile(text, rel, "exec")
    except SyntaxError as exc:
        raise CourseError(
            f"{rel}:{exc.lineno}: the exported code does not compile: {exc.msg}; "
            "fix the '#| export' cells of the module") from None
    if not importable:
        return
    dotted = "tinytorch.core." + path.stem
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(root), *filter(None, [os.environ.get("PYTHONPATH")])]), MPLBACKEND="Agg")
    proc = subprocess.run(
        [sys.executable, "-c", f"import {dotted}"], cwd=root, env=env,
        capture_output=True, text=True, timeout=120,
    )
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "no message"
        raise CourseError(f"{rel}: `import {dotted}` fails: {tail}")


def build_module(
    parsed: ParsedModule,
    out_root: Path | None = None,
    *,
    check_import: bool = True,
    log: Callable[[str], None] = print,
) -> list[Path]:
    """Write the source notebook and the export of one linted module; return changed paths.

    ``out_root`` redirects the outputs (for ``course check``); default is the course root.
    """
    module = parsed.module
    root = out_root or module.root
    target = Module(module.number, module.name, root)
    changed = []
    nb_text = notebook_text(source_notebook(parsed))
    if _write_if_changed(target.source_notebook, nb_text):
        changed.append(target.source_notebook)
    exp = export_text(parsed)
    rel_export = f"tinytorch/core/{module.name}.py"
    check_export(target.export, rel_export, exp, module.root, importable=False)
    if _write_if_changed(target.export, exp):
        changed.append(target.export)
    if check_import:
        check_export(target.export, rel_export, exp, root, importable=True)
    status = "updated" if changed else "unchanged"
    log(f"build {module.folder}: source_notebooks/{module.folder}/{module.notebook_name}, "
        f"{rel_export} ({status})")
    return changed


def build(
    course: Course,
    wanted: list[str] | None = None,
    out_root: Path | None = None,
    *,
    check_import: bool = True,
    log: Callable[[str], None] = print,
) -> list[Module]:
    """Lint then build the chosen modules (all by default); return the modules built."""
    modules = course.select(wanted)
    if not wanted:
        for missing in course.missing_files():
            log(f"build: skipping {missing} (file does not exist yet)")
    if not modules:
        raise CourseError(f"{course.root}/modules: no module files found")
    log(f"lint {', '.join(m.folder for m in modules)}")
    parsed = lint(course, modules)
    for module in modules:
        build_module(parsed[module.folder], out_root, check_import=check_import, log=log)
    if out_root is None:
        ruff_report([m.export for m in modules], course.root, log)
    return modules


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
