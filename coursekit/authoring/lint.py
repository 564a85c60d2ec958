"""Lint of module files: cell headers, nbgrader metadata and region markers.

Every problem names the file and line; all problems are collected before failing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import jupytext
from nbformat import NotebookNode

from coursekit.course import Course, CourseError, Module

MARKER_RE = re.compile(r"^\s*#\s*%%")
GOOD_MARKER_RE = re.compile(r"^# %%(?: (?P<rest>.*))?$")
CELL_TYPE_RE = re.compile(r"^\[(?P<kind>[^\]]*)\]\s*")
GRADE_ID_RE = re.compile(r"^[A-Za-z0-9_-]+$")
EXPORT_LINE = "#| export"

BEGIN_SOLUTION = "### BEGIN SOLUTION"
END_SOLUTION = "### END SOLUTION"
BEGIN_HIDDEN = "### BEGIN HIDDEN TESTS"
END_HIDDEN = "### END HIDDEN TESTS"
# nbgrader recognises a delimiter anywhere in a line: these substrings are what it looks for
DELIMITERS = {
    "BEGIN SOLUTION": BEGIN_SOLUTION,
    "END SOLUTION": END_SOLUTION,
    "BEGIN HIDDEN TESTS": BEGIN_HIDDEN,
    "END HIDDEN TESTS": END_HIDDEN,
}

NBGRADER_KEYS = {"grade", "grade_id", "locked", "points", "schema_version", "solution", "task"}
HEADER_KEYS = {"nbgrader", "tags"}
JUPYTEXT_KEYS = {"lines_to_next_cell"}
REPORTED_KEYS = {"incorrectly_encoded_metadata", "title", "region_name"}


@dataclass(frozen=True)
class Problem:
    """One lint finding, located by file and line."""

    path: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


class LintError(CourseError):
    """Raised when lint finds problems; ``problems`` holds all of them."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        lines = "\n".join(f"  {p}" for p in problems)
        super().__init__(f"lint failed with {len(problems)} problem(s):\n{lines}")


@dataclass
class Cell:
    """A cell of a module file with its position in the file."""

    index: int
    header_line: int  # 1-based line of the ``# %%`` marker (first body line if no marker)
    header: str
    cell_type: str
    metadata: dict[str, Any]
    body: list[tuple[int, str]] = field(default_factory=list)  # (line number, text)

    @property
    def nbgrader(self) -> dict[str, Any] | None:
        meta = self.metadata.get("nbgrader")
        return meta if isinstance(meta, dict) else None

    @property
    def source(self) -> str:
        return "\n".join(text for _, text in self.body)

    @property
    def is_solution(self) -> bool:
        return bool(self.nbgrader and self.nbgrader.get("solution") is True)

    @property
    def is_test(self) -> bool:
        return bool(self.nbgrader and self.nbgrader.get("grade") is True)

    def first_code_line(self) -> tuple[int, str] | None:
        for lineno, text in self.body:
            if text.strip():
                return lineno, text
        return None

    @property
    def is_export(self) -> bool:
        first = self.first_code_line()
        return self.cell_type == "code" and first is not None and first[1].strip() == EXPORT_LINE


@dataclass
class ParsedModule:
    """A module file read by Jupytext and split into located cells."""

    module: Module
    text: str
    notebook: NotebookNode | None
    cells: list[Cell]
    problems: list[Problem]


def _split(module: Module, text: str) -> tuple[list[Cell], list[Problem], int]:
    """Split the file into cells at ``# %%`` markers, the way Jupytext does."""
    path = module.rel_source
    problems: list[Problem] = []
    lines = text.splitlines()
    start = 0
    if lines and lines[0].strip() == "# ---":
        for i in range(1, len(lines)):
            if lines[i].strip() == "# ---":
                start = i + 1
                break
        else:
            problems.append(Problem(
                path, 1, "YAML header '# ---' is not closed by a second '# ---'"))
            start = len(lines)
    else:
        problems.append(Problem(
            path, 1, "missing the Jupytext header ('# ---' ... '# ---' with kernelspec)"))
    cells: list[Cell] = []
    preamble: list[tuple[int, str]] = []
    current: Cell | None = None
    for i in range(start, len(lines)):
        lineno, line = i + 1, lines[i]
        if MARKER_RE.match(line):
            current = Cell(len(cells), lineno, line, "code", {})
            cells.append(current)
        elif current is None:
            preamble.append((lineno, line))
        else:
            current.body.append((lineno, line))
    if any(t.strip() for _, t in preamble):
        first = next(n for n, t in preamble if t.strip())
        cell = Cell(0, first, "", "code", {}, preamble)
        for c in cells:
            c.index += 1
        cells.insert(0, cell)
        problems.append(Problem(path, first, "text before the first '# %%' cell marker"))
    return cells, problems, start


def parse_module(module: Module) -> ParsedModule:
    """Read a module file with Jupytext and locate its cells; collect parse problems."""
    path = module.rel_source
    try:
        text = module.source.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return ParsedModule(module, "", None, [], [Problem(path, 1, f"cannot read: {exc}")])
    cells, problems, _ = _split(module, text)
    try:
        nb = jupytext.reads(text, fmt="py:percent")
    except Exception as exc:  # jupytext raises many kinds
        problems.append(Problem(path, 1, f"Jupytext cannot read the file: {exc}"))
        return ParsedModule(module, text, None, cells, problems)
    if len(nb.cells) != len(cells):
        problems.append(Problem(
            path, 1,
            f"found {len(cells)} '# %%' cell markers but Jupytext reads {len(nb.cells)} cells; "
            "check the cell markers",
        ))
        return ParsedModule(module, text, nb, cells, problems)
    for cell, nbcell in zip(cells, nb.cells, strict=True):
        cell.cell_type = nbcell.cell_type
        cell.metadata = dict(nbcell.metadata)
        if nbcell.cell_type == "markdown":
            # Jupytext strips the '# ' comment prefix of markdown lines
            cell.body = [(n, t[2:] if t.startswith("# ") else t.lstrip("#")) for n, t in cell.body]
    return ParsedModule(module, text, nb, cells, problems)


def _lint_header(path: str, cell: Cell, problems: list[Problem]) -> None:
    if not cell.header:
        return
    n = cell.header_line
    good = GOOD_MARKER_RE.match(cell.header)
    if not good or cell.header.startswith("# %%%"):
        problems.append(Problem(
            path, n, f"malformed cell marker {cell.header.strip()!r}: expected '# %%', "
            "'# %% [markdown]' or '# %% nbgrader={...}' at the start of the line"))
        return
    rest = (good.group("rest") or "").strip()
    kind = CELL_TYPE_RE.match(rest)
    if kind and kind.group("kind") != "markdown":
        problems.append(Problem(
            path, n, f"cell type [{kind.group('kind')}] is not used in the course: "
            "expected '# %%' (code) or '# %% [markdown]'"))
    meta = cell.metadata
    if "incorrectly_encoded_metadata" in meta:
        problems.append(Problem(
            path, n, "cell metadata does not parse: "
            f"{meta['incorrectly_encoded_metadata']!r}; expected key=JSON pairs such as "
            'nbgrader={"grade": false, ...} (valid JSON: double quotes, true/false)'))
    if "title" in meta or "region_name" in meta:
        junk = meta.get("title", meta.get("region_name"))
        problems.append(Problem(
            path, n, f"unexpected text in the cell header: {junk!r}; "
            "only metadata such as nbgrader={...} may follow '# %%'"))
    for key in meta:
        if key not in HEADER_KEYS | JUPYTEXT_KEYS | REPORTED_KEYS:
            problems.append(Problem(
                path, n, f"unexpected cell metadata key {key!r}; expected one of "
                f"{sorted(HEADER_KEYS)}"))
    if "nbgrader" in meta and not isinstance(meta["nbgrader"], dict):
        problems.append(Problem(
            path, n, f"nbgrader metadata must be a JSON object, got {meta['nbgrader']!r}"))


def _is_bool(value: Any) -> bool:
    return isinstance(value, bool)


def _lint_nbgrader(path: str, cell: Cell, problems: list[Problem]) -> None:
    nbg = cell.nbgrader
    if nbg is None:
        return
    n = cell.header_line

    def bad(msg: str) -> None:
        problems.append(Problem(path, n, msg))

    for key in nbg:
        if key not in NBGRADER_KEYS:
            bad(f"unknown nbgrader key {key!r}; expected keys: {sorted(NBGRADER_KEYS)}")
    if nbg.get("schema_version") != 3:
        bad(f"nbgrader schema_version must be 3, got {nbg.get('schema_version')!r}")
    gid = nbg.get("grade_id")
    if not isinstance(gid, str) or not gid:
        bad("nbgrader grade_id is missing "
            "(every nbgrader cell needs a course-wide unique grade_id)")
    elif not GRADE_ID_RE.match(gid):
        bad(f"grade_id {gid!r} may only contain letters, digits, '_' and '-'")
    for key in ("grade", "solution", "locked", "task"):
        if key in nbg and not _is_bool(nbg[key]):
            bad(f"nbgrader {key!r} must be true or false, got {nbg[key]!r}")
    grade = nbg.get("grade") is True
    solution = nbg.get("solution") is True
    locked = nbg.get("locked") is True
    if nbg.get("task") is True:
        bad("task cells are not used in the course; set \"task\": false")
    if grade and solution:
        bad("cell is both \"grade\": true and \"solution\": true (a manually graded answer); "
            "the course grades automatically: use a solution cell plus a test cell")
    if grade:
        points = nbg.get("points")
        if isinstance(points, bool) or not isinstance(points, (int, float)) or not points > 0:
            bad(f"graded cell needs numeric \"points\" > 0, got {points!r}")
        if not solution and not locked:
            bad("test cell (\"grade\": true) must be \"locked\": true")
        if cell.cell_type != "code":
            bad("a graded cell must be a code cell")
    elif "points" in nbg and nbg["points"] not in (0, None):
        bad(f"\"points\": {nbg['points']!r} on a cell that is not graded (\"grade\": false)")
    if solution:
        if locked:
            bad("solution cell must be \"locked\": false (students write in it)")
        if cell.cell_type != "code":
            bad("a solution cell must be a code cell")


def _lint_regions(path: str, cell: Cell, problems: list[Problem]) -> tuple[int, int]:
    """Check region markers; return (solution regions, hidden regions)."""
    open_kind: str | None = None
    open_line = 0
    counts = {"solution": 0, "hidden": 0}
    for lineno, text in cell.body:
        found = [sub for sub in DELIMITERS if sub in text]
        if not found:
            continue
        stripped = text.strip()
        # "END SOLUTION" is a substring of nothing else; "BEGIN HIDDEN TESTS" contains no other key
        sub = found[0]
        if stripped != DELIMITERS[sub]:
            problems.append(Problem(
                path, lineno, f"line {stripped!r} contains the nbgrader delimiter {sub!r}; "
                f"write it alone on its line as {DELIMITERS[sub]!r}"))
            continue
        kind = "solution" if "SOLUTION" in sub else "hidden"
        begin = sub.startswith("BEGIN")
        if cell.cell_type != "code":
            problems.append(Problem(path, lineno, f"{stripped!r} in a markdown cell"))
            continue
        if begin:
            if open_kind is not None:
                problems.append(Problem(
                    path, lineno,
                    f"{stripped!r} nested inside the region opened at line {open_line}; "
                    "close it first"))
                continue
            if kind == "solution" and not cell.is_solution:
                problems.append(Problem(
                    path, lineno, "solution region in a cell that is not a solution cell "
                    "(needs nbgrader \"solution\": true)"))
            if kind == "hidden" and not (cell.is_test and not cell.is_solution):
                problems.append(Problem(
                    path, lineno, "hidden tests outside a graded test cell "
                    "(needs nbgrader \"grade\": true, \"solution\": false)"))
            open_kind, open_line = kind, lineno
        else:
            if open_kind is None:
                problems.append(Problem(path, lineno, f"{stripped!r} without a matching BEGIN"))
            elif open_kind != kind:
                problems.append(Problem(
                    path, lineno, f"{stripped!r} closes the {open_kind} region opened at line "
                    f"{open_line}"))
                open_kind = None
            else:
                counts[kind] += 1
                open_kind = None
    if open_kind is not None:
        problems.append(Problem(path, open_line, f"{open_kind} region opened here is never closed"))
    return counts["solution"], counts["hidden"]


def _lint_export(path: str, cell: Cell, problems: list[Problem]) -> None:
    first = cell.first_code_line()
    for lineno, text in cell.body:
        if text.strip() == EXPORT_LINE and (first is None or lineno != first[0]):
            problems.append(Problem(path, lineno, "'#| export' must be the first line of its cell"))
        if text.strip() == EXPORT_LINE and cell.cell_type != "code":
            problems.append(Problem(path, lineno, "'#| export' in a markdown cell"))
    if cell.is_export and cell.is_test:
        problems.append(Problem(path, cell.header_line, "a test cell must not be exported"))


def lint_parsed(parsed: ParsedModule) -> list[Problem]:
    """All problems of one module file (course-wide id uniqueness is checked separately)."""
    path = parsed.module.rel_source
    problems = list(parsed.problems)
    nb = parsed.notebook
    if nb is not None:
        ks = nb.metadata.get("kernelspec")
        keys = ("name", "display_name", "language")
        if not isinstance(ks, dict) or not all(ks.get(k) for k in keys):
            problems.append(Problem(
                path, 1, "the Jupytext header has no complete kernelspec "
                "(name, display_name, language)"))
    aligned = nb is not None and len(nb.cells) == len(parsed.cells)
    seen: dict[str, int] = {}
    for cell in parsed.cells:
        if not aligned:
            break
        _lint_header(path, cell, problems)
        _lint_nbgrader(path, cell, problems)
        _lint_regions(path, cell, problems)
        _lint_export(path, cell, problems)
        gid = cell.nbgrader.get("grade_id") if cell.nbgrader else None
        if isinstance(gid, str) and gid:
            if gid in seen:
                problems.append(Problem(
                    path, cell.header_line,
                    f"duplicate grade_id {gid!r} (first used at line {seen[gid]})"))
            else:
                seen[gid] = cell.header_line
    return sorted(set(problems), key=lambda p: (p.path, p.line, p.message))


def grade_ids(parsed: ParsedModule) -> list[tuple[str, int]]:
    """``(grade_id, line)`` of every nbgrader cell of a parsed module."""
    out = []
    for cell in parsed.cells:
        gid = cell.nbgrader.get("grade_id") if cell.nbgrader else None
        if isinstance(gid, str) and gid:
            out.append((gid, cell.header_line))
    return out


def lint(course: Course, targets: list[Module]) -> dict[str, ParsedModule]:
    """Lint ``targets`` (and grade_id uniqueness against every module); raise LintError.

    Returns the parsed targets keyed by folder name.
    """
    problems: list[Problem] = []
    parsed: dict[str, ParsedModule] = {}
    for module in course.modules():
        p = parse_module(module)
        parsed[module.folder] = p
    target_names = {m.folder for m in targets}
    for name in target_names:
        problems.extend(lint_parsed(parsed[name]))
    # course-wide uniqueness of grade_id
    owner: dict[str, tuple[str, int]] = {}
    for folder, p in parsed.items():
        for gid, line in grade_ids(p):
            if gid in owner and owner[gid][0] != p.module.rel_source:
                first_path, first_line = owner[gid]
                if folder in target_names or first_path.split("/")[1] in target_names:
                    problems.append(Problem(
                        p.module.rel_source, line,
                        f"duplicate grade_id {gid!r}: already used at {first_path}:{first_line} "
                        "(grade_id is unique across the course; prefix it with the module name)"))
            elif gid not in owner:
                owner[gid] = (p.module.rel_source, line)
    if problems:
        raise LintError(sorted(set(problems), key=lambda p: (p.path, p.line, p.message)))
    return {name: parsed[name] for name in sorted(target_names)}
