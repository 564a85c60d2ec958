"""Helpers of the publishing tests (imported by the tests and their conftest)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TEST_SLUG = "course-test-org/tinytorch-student"
TEST_BRANCH = "main"
COPIED = ("modules", "source_notebooks", "release", "tinytorch", "binder", "milestones", "data",
          "grader_config.py", "pyproject.toml", "requirements.txt")


def write_settings(root: Path, slug: str = TEST_SLUG, branch: str = TEST_BRANCH,
                   through: str = "08") -> None:
    """A course.toml naming the student repository."""
    (root / "course.toml").write_text(
        f'[student_repository]\nslug = "{slug}"\nbranch = "{branch}"\nthrough = "{through}"\n',
        encoding="utf-8")


def copy_course(dest: Path) -> Path:
    """The course's sources and generated files, without git, grading or caches."""
    ignore = shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints", "*.egg-info")
    dest.mkdir(parents=True)
    for name in COPIED:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=ignore)
        else:
            shutil.copy2(src, dest / name)
    return dest


def git(repo: Path, *args: str) -> str:
    """Output of a git command in ``repo``."""
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                          check=True).stdout


def tree_bytes(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` by relative path, except ``.git`` and the ``__pycache__``
    folders Python writes when a test imports the published package (the repository's
    ``.gitignore`` keeps those out of it)."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and not {".git", "__pycache__"} & set(p.relative_to(root).parts)}


def load_nb(path: Path) -> dict:
    """A notebook as JSON."""
    return json.loads(path.read_text(encoding="utf-8"))


def cell_text(cell: dict) -> str:
    """A cell's source as one string."""
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def blocks(source_notebook: Path, kind: str) -> list[str]:
    """The text between ``### BEGIN <kind>`` and ``### END <kind>`` in every cell of an
    nbgrader source notebook (``kind``: ``SOLUTION`` or ``HIDDEN TESTS``), as written."""
    found = []
    for cell in load_nb(source_notebook)["cells"]:
        inside: list[str] | None = None
        for line in cell_text(cell).splitlines():
            if f"BEGIN {kind}" in line:
                inside = []
            elif f"END {kind}" in line and inside is not None:
                found.append("\n".join(inside))
                inside = None
            elif inside is not None:
                inside.append(line)
    return found


def searchable(rel: str, data: bytes) -> str:
    """What a reader sees of a file: a notebook's cell sources and outputs, else the text
    (a binary file, the milestones' data, as Latin-1)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")
    if not rel.endswith(".ipynb"):
        return text
    parts = []
    for cell in json.loads(text)["cells"]:
        parts.append(cell_text(cell))
        for out in cell.get("outputs", []):
            value = out.get("text", "")
            parts.append("".join(value) if isinstance(value, list) else value)
            for data_value in (out.get("data") or {}).values():
                parts.append("".join(data_value) if isinstance(data_value, list)
                             else str(data_value))
    return "\n".join(parts)


def solved(release_nb: Path, source_nb: Path) -> dict:
    """The release notebook with every solution cell's text replaced by the reference
    solution (matched by grade_id), as a student who solved everything hands it in."""
    solutions = {
        c["metadata"]["nbgrader"]["grade_id"]: cell_text(c)
        for c in load_nb(source_nb)["cells"]
        if c.get("metadata", {}).get("nbgrader", {}).get("solution")
    }
    nb = load_nb(release_nb)
    filled = 0
    for cell in nb["cells"]:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("solution"):
            cell["source"] = solutions[meta["grade_id"]]
            filled += 1
    assert filled, f"{release_nb}: no solution cells"
    return nb
