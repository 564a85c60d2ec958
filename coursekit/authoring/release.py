"""``course release``: nbgrader generate_assignment into ``release/``, then the leak guard."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import nbformat

from coursekit import nbg
from coursekit.authoring.build import write_if_changed, notebook_text
from coursekit.course import Course, CourseError, Module
from coursekit.leaks import guard

VOLATILE_METADATA = ("widgets", "toc", "varInspector", "celltoolbar")


def normalize_release(text: str, where: str) -> str:
    """Canonical notebook text of a generated student notebook (no volatile metadata)."""
    try:
        nb = nbformat.reads(text, as_version=4)
    except Exception as exc:
        raise CourseError(f"{where}: nbgrader wrote an unreadable notebook: {exc}") from exc
    for key in VOLATILE_METADATA:
        nb.metadata.pop(key, None)
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        if cell.cell_type == "code":
            cell.execution_count = None
            cell.outputs = []
    return notebook_text(nb)


def generate(course: Course, modules: list[Module], out_dir: Path,
             source_root: Path | None = None) -> dict[str, Path]:
    """Run generate_assignment for ``modules`` in a scratch course; write ``out_dir/NN_name/``.

    Source notebooks are read from ``source_root/source_notebooks`` (default: the course).
    Each module's output folder is replaced by what nbgrader produced. Returns the notebooks.
    """
    written: dict[str, Path] = {}
    with tempfile.TemporaryDirectory(prefix="course-release-") as tmp:
        scratch = Path(tmp)
        cfg = nbg.load_config(course, root=scratch)
        for module in modules:
            src_dir = (source_root or course.root) / "source_notebooks" / module.folder
            if not (src_dir / module.notebook_name).is_file():
                raise CourseError(
                    f"source_notebooks/{module.folder}/{module.notebook_name}: missing; "
                    f"run `course build --module {module.number}` first")
            # the whole source folder, as nbgrader would see it in place
            shutil.copytree(src_dir, scratch / "source_notebooks" / module.folder)
            result = nbg.run("generate_assignment", cfg, module.folder)
            if not result.get("success"):
                raise CourseError(
                    f"nbgrader generate_assignment {module.folder} failed:\n"
                    + nbg.failure_text(result))
            produced = scratch / "release" / module.folder
            dest = out_dir / module.folder
            if dest.exists():
                shutil.rmtree(dest)
            dest.mkdir(parents=True)
            for path in sorted(produced.rglob("*")):
                if path.is_dir():
                    continue
                target = dest / path.relative_to(produced)
                target.parent.mkdir(parents=True, exist_ok=True)
                if path.suffix == ".ipynb":
                    rel = f"release/{module.folder}/{path.name}"
                    write_if_changed(target, normalize_release(path.read_text("utf-8"), rel))
                else:
                    shutil.copy(path, target)  # the leak guard reports it
            written[module.folder] = dest / module.notebook_name
    return written


def release(course: Course, wanted: list[str] | None = None,
            log: Callable[[str], None] = print) -> dict[str, Path]:
    """Generate every (or the chosen) student notebook into ``release/`` and guard it."""
    modules = course.select(wanted)
    if not modules:
        raise CourseError(f"{course.root}/modules: no module files found")
    out_dir = course.root / "release"
    before = {m.folder: _read(m.release_notebook) for m in modules}
    written = generate(course, modules, out_dir)
    for m in modules:
        status = "unchanged" if before[m.folder] == _read(m.release_notebook) else "updated"
        log(f"release {m.folder}: release/{m.folder}/{m.notebook_name} ({status})")
    # the guard looks at the whole of release/, including modules not released this time
    guard(out_dir, course.modules(), course.root)
    log(f"leak guard: release/ clean ({len(course.modules())} notebook(s))")
    return written


def _read(path: Path) -> bytes | None:
    return path.read_bytes() if path.is_file() else None

