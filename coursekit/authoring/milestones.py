"""The milestones: ``milestones/NN_name/stem.py`` -> ``stem.ipynb``, and what each one needs.

Every milestone is one Jupytext percent-format file, both a notebook and a script. Its
notebook is generated from it by ``course build`` and committed, without outputs: the
Colab set-up cell of the modules (it installs the student repository's package in Colab)
before the first code cell, then the file's cells, with ids ``cell-000``, ``cell-001``, ...
and only the kernel's name as notebook metadata, so that building twice gives the same
bytes. ``course check`` fails when a notebook is out of date.

A milestone names the modules it runs on in ``NEEDS = ("01_tensor", ...)``; every
``tinytorch.core`` module it imports must be among them. ``course publish --through NN``
carries the milestones whose modules are all released by NN.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import jupytext
import nbformat

from coursekit.authoring.colab import course_colab_source
from coursekit.course import Course, CourseError, Module

MILESTONES_DIR = "milestones"
MILESTONE_DIR_RE = re.compile(r"^\d\d_[a-z0-9_]+$")
#: Id of the Colab set-up cell of a milestone notebook.
COLAB_CELL_ID = "colab-setup"
_CORE_IMPORT_RE = re.compile(r"^\s*(?:from|import)\s+tinytorch\.core\.(\w+)", re.M)


@dataclass(frozen=True)
class Milestone:
    """One milestone: ``milestones/NN_name/stem.py`` and its notebook."""

    folder: str  # e.g. "02_xor_1969"
    source: Path

    @property
    def notebook(self) -> Path:
        """The notebook generated from the source: next to it, same stem."""
        return self.source.with_suffix(".ipynb")

    @property
    def rel_source(self) -> str:
        return f"{MILESTONES_DIR}/{self.folder}/{self.source.name}"

    @property
    def rel_notebook(self) -> str:
        return f"{MILESTONES_DIR}/{self.folder}/{self.notebook.name}"


def milestones(course: Course) -> list[Milestone]:
    """The course's milestones, in order (none when it has no ``milestones/``)."""
    base = course.root / MILESTONES_DIR
    if not base.is_dir():
        return []
    found = []
    for folder in sorted(p for p in base.iterdir()
                         if p.is_dir() and MILESTONE_DIR_RE.match(p.name)):
        sources = sorted(p for p in folder.glob("*.py") if not p.name.startswith("_"))
        if len(sources) != 1:
            raise CourseError(f"{MILESTONES_DIR}/{folder.name}: expected one milestone file "
                              f"(stem.py), found {len(sources)}")
        found.append(Milestone(folder.name, sources[0]))
    return found


def needs(course: Course, milestone: Milestone) -> list[Module]:
    """The modules a milestone runs on (its ``NEEDS``), checked: each a module of the
    course, every ``tinytorch.core`` module it imports among them."""
    text = milestone.source.read_text(encoding="utf-8")
    try:
        tree = ast.parse(text, milestone.rel_source)
    except SyntaxError as exc:
        raise CourseError(f"{milestone.rel_source}:{exc.lineno}: does not compile: "
                          f"{exc.msg}") from None
    named: list[str] | None = None
    for node in tree.body:
        target = node.target if isinstance(node, ast.AnnAssign) else (
            node.targets[0] if isinstance(node, ast.Assign) and len(node.targets) == 1
            else None)
        if isinstance(target, ast.Name) and target.id == "NEEDS":
            try:
                value = ast.literal_eval(node.value)  # type: ignore[arg-type]
            except ValueError:
                value = None
            if not (isinstance(value, (tuple, list))
                    and all(isinstance(v, str) for v in value)):
                raise CourseError(f"{milestone.rel_source}:{node.lineno}: NEEDS must be a "
                                  "tuple of module folders such as (\"01_tensor\", ...)")
            named = list(value)
    if named is None:
        raise CourseError(f"{milestone.rel_source}: no NEEDS = (...) naming the modules it "
                          "runs on")
    by_folder = {m.folder: m for m in course.modules()}
    unknown = [f for f in named if f not in by_folder]
    if unknown:
        raise CourseError(f"{milestone.rel_source}: NEEDS names {', '.join(unknown)}, not "
                          f"modules of the course ({', '.join(by_folder)})")
    names = {f[3:] for f in named}
    imported = sorted(set(_CORE_IMPORT_RE.findall(text)) - names)
    if imported:
        raise CourseError(f"{milestone.rel_source}: imports tinytorch.core."
                          f"{', tinytorch.core.'.join(imported)}, which NEEDS does not name")
    return sorted((by_folder[f] for f in named), key=lambda m: m.number)


def notebook_text(milestone: Milestone, colab_source: str) -> str:
    """The canonical notebook JSON of a milestone (no outputs, stable ids)."""
    parsed = jupytext.reads(milestone.source.read_text(encoding="utf-8"), fmt="py:percent")
    kernelspec = parsed.metadata.get("kernelspec", {})
    nb = nbformat.v4.new_notebook()
    nb.metadata = nbformat.from_dict({
        "kernelspec": {
            "display_name": kernelspec.get("display_name", "Python 3 (ipykernel)"),
            "language": kernelspec.get("language", "python"),
            "name": kernelspec.get("name", "python3"),
        },
        "language_info": {"name": kernelspec.get("language", "python")},
    })
    for i, cell in enumerate(parsed.cells):
        if cell.cell_type == "markdown":
            new = nbformat.v4.new_markdown_cell(cell.source)
        else:
            new = nbformat.v4.new_code_cell(cell.source)
        new["id"] = f"cell-{i:03d}"
        nb.cells.append(new)
    colab = nbformat.v4.new_code_cell(colab_source)
    colab["id"] = COLAB_CELL_ID
    first_code = next((i for i, c in enumerate(nb.cells) if c.cell_type == "code"),
                      len(nb.cells))
    nb.cells.insert(first_code, colab)
    nbformat.validate(nb)
    text = nbformat.writes(nb, version=4)
    return text if text.endswith("\n") else text + "\n"


def stale(course: Course) -> list[str]:
    """Milestone notebooks that are missing or differ from what their source gives."""
    colab = course_colab_source(course)
    out = []
    for milestone in milestones(course):
        path = milestone.notebook
        if not path.is_file():
            out.append(f"{milestone.rel_notebook} (missing)")
        elif path.read_text(encoding="utf-8") != notebook_text(milestone, colab):
            out.append(f"{milestone.rel_notebook} (differs from a fresh build)")
    return out


def build_milestones(course: Course, log: Callable[[str], None] = print) -> list[Path]:
    """Check every milestone's NEEDS and write the notebooks that changed; return them."""
    from coursekit.authoring.build import write_if_changed

    colab = course_colab_source(course)
    written = []
    for milestone in milestones(course):
        needed = needs(course, milestone)
        changed = write_if_changed(milestone.notebook, notebook_text(milestone, colab))
        if changed:
            written.append(milestone.notebook)
        log(f"build {milestone.folder}: {milestone.rel_notebook} (needs modules "
            f"{', '.join(m.number for m in needed)}; {'updated' if changed else 'unchanged'})")
    return written
