"""Lint of module files: cell headers, nbgrader metadata and region markers.

Every problem names the file and line; all problems are collected before failing. Among
them (:func:`binding_problems`): a test that reads a name the grader does not protect (one
bound only by a plain cell, which students may rewrite, or by an earlier test), and a cell
that binds a given cell's name again.
:func:`fairness_warnings` adds warnings that never stop a build: hidden tests that assert
message words the notebook never gives, and graded cells that check too much at once.
"""

from __future__ import annotations

import ast
import builtins
import re
import symtable
from dataclasses import dataclass, field
from typing import Any

import jupytext
from nbformat import NotebookNode

from coursekit.cells import BEGIN_HIDDEN, BEGIN_SOLUTION, END_HIDDEN, END_SOLUTION
from coursekit.course import Course, CourseError, Module
from coursekit.grading.execution.kernel.seal import ipython_name

MARKER_RE = re.compile(r"^\s*#\s*%%")
GOOD_MARKER_RE = re.compile(r"^# %%(?: (?P<rest>.*))?$")
CELL_TYPE_RE = re.compile(r"^\[(?P<kind>[^\]]*)\]\s*")
GRADE_ID_RE = re.compile(r"^[A-Za-z0-9_-]+$")
EXPORT_LINE = "#| export"

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
    if aligned:
        problems.extend(binding_problems(parsed))
    return sorted(set(problems), key=lambda p: (p.path, p.line, p.message))


# ---- what a test may read ---------------------------------------------------------------


# symbol tables of comprehensions, which run where they stand (a function's run when called)
_COMPREHENSIONS = {"listcomp", "setcomp", "dictcomp", "genexpr"}


def scope_names(source: str) -> tuple[set[str], set[str], set[str]] | None:
    """``(bound, read, deferred)``: the global names a cell's code binds (assignments,
    definitions, imports, loop targets, ``global`` in a function), the global names it reads
    in any of its scopes (functions, classes, comprehensions), and of those the ones read
    inside a function (looked up when it is called, not when the cell runs); None if the code
    does not parse."""
    try:
        top = symtable.symtable(source, "<cell>", "exec")
    except SyntaxError:
        return None
    bound: set[str] = set()
    read: set[str] = set()
    deferred: set[str] = set()
    for sym in top.get_symbols():
        if sym.is_assigned() or sym.is_imported() or sym.is_namespace():
            bound.add(sym.get_name())
        if sym.is_referenced():
            read.add(sym.get_name())
    tables = [(child, False) for child in top.get_children()]
    while tables:
        table, in_function = tables.pop()
        in_function = in_function or (table.get_type() == "function"
                                      and table.get_name() not in _COMPREHENSIONS)
        tables.extend((child, in_function) for child in table.get_children())
        for sym in table.get_symbols():
            if not sym.is_global():
                continue
            if sym.is_referenced():
                read.add(sym.get_name())
                if in_function:
                    deferred.add(sym.get_name())
            if sym.is_declared_global() and sym.is_assigned():
                bound.add(sym.get_name())
    return bound, read, deferred


def _is_given(cell: Cell) -> bool:
    """A locked cell of given code: the grader runs it sealed and puts back what it binds
    before every locked cell that follows."""
    nbg = cell.nbgrader
    return bool(nbg and nbg.get("locked") is True and nbg.get("grade") is not True
                and nbg.get("solution") is not True and nbg.get("grade_id"))


def _first_read(cell: Cell, tree: ast.AST | None, name: str) -> int:
    """The file line where ``cell`` first reads ``name`` (its header line if not found)."""
    lines = [n.lineno for n in ast.walk(tree) if isinstance(n, ast.Name) and n.id == name
             and isinstance(n.ctx, ast.Load)] if tree is not None else []
    return _file_line(cell, ast.Name(lineno=min(lines))) if lines else cell.header_line


def _gid(cell: Cell) -> str | None:
    return cell.nbgrader.get("grade_id") if cell.nbgrader else None


def binding_problems(parsed: ParsedModule) -> list[Problem]:
    """Tests that read names the grader does not protect, and cells that rebind names it does.

    A graded test may read only names bound before it by given cells (locked, not graded:
    the grader runs them sealed and puts what they bind back before every locked cell), by
    solution cells (the student's graded work), by the test itself, and the builtins. A
    name bound only by an unlocked cell (a demo, a helper) is the student's to rewrite and
    nothing puts it back; one bound only by an earlier test is not protected either, and
    that test failing half-way would break this one. The grader protects none of the names
    IPython binds itself (``_``, ``_5``, ``_i``, ...). A given name (one no solution cell
    binds) must not be bound again by a later unlocked cell or test: the grader would put
    it back (and fail the test).
    """
    path = parsed.module.rel_source
    code = [(cell, scope_names(cell.source)) for cell in parsed.cells if cell.cell_type == "code"]
    solution_names: set[str] = set()
    for cell, names in code:
        if cell.is_solution and names is not None:
            solution_names |= names[0]
    protected: set[str] = set()  # bound by a given or a solution cell so far
    given: dict[str, Cell] = {}  # a name the grader puts back -> the given cell binding it
    loose: dict[str, Cell] = {}  # a name it does not protect -> the last cell binding it
    helpers: list[tuple[Cell, set[str]]] = []  # given cells so far, with the names they read
    reported: set[tuple[int, str]] = set()
    problems: list[Problem] = []

    def check(cell: Cell, names: set[str], in_test: bool) -> None:
        for name in sorted(names - protected):
            binder = loose.get(name)
            if binder is None or hasattr(builtins, name) or (cell.index, name) in reported:
                continue
            reported.add((cell.index, name))
            what = (f"test {_gid(cell)!r}" if in_test
                    else f"the given cell {_gid(cell)!r} (code that tests run)")
            problems.append(Problem(
                path, _first_read(cell, _cell_tree(cell), name),
                f"{what} uses {name!r}, bound only by "
                f"{_unprotected(binder, name, path, in_test)}"))

    for cell, names in code:
        if names is None:
            continue  # the compile check reports it
        bound, read, deferred = names
        if _is_given(cell):
            check(cell, read - bound, in_test=False)
            helpers.append((cell, deferred - bound))
        elif cell.is_test and not cell.is_solution:
            check(cell, read - bound, in_test=True)
            for helper, reads in helpers:  # what given functions read when the test calls them
                check(helper, reads, in_test=False)
        if _is_given(cell):
            for name in bound:
                if ipython_name(name):
                    loose[name] = cell
                    continue
                protected.add(name)
                loose.pop(name, None)
                if name not in solution_names:  # the grader leaves the student's names alone
                    given[name] = cell
        elif cell.is_solution:
            protected |= bound
            for name in bound:
                loose.pop(name, None)
        else:
            for name in sorted(bound & given.keys()):
                kind = f"test {_gid(cell)!r}" if cell.is_test else "an unlocked cell"
                problems.append(Problem(
                    path, cell.header_line,
                    f"{kind} binds {name!r} again, a name of the given cell at "
                    f"{path}:{given[name].header_line}: the grader puts given names back "
                    "before every locked cell (and fails a test that changes one), so the "
                    "notebook would not run as written; use another name"))
            for name in bound - protected:
                loose[name] = cell
    return problems


def _unprotected(cell: Cell, name: str, path: str, in_test: bool) -> str:
    """The cell that leaves ``name`` unprotected, why, and what to do, for a lint message."""
    where = f"{path}:{cell.header_line}"
    given = "a given cell (nbgrader \"locked\": true with a grade_id, not graded)"
    if cell.is_test:
        return (f"the test {_gid(cell)!r} at {where}: a test's names are not protected, and "
                f"that test failing would break this one; bind {name!r} in this test too, or "
                f"in {given}")
    if _is_given(cell):
        return (f"the given cell {_gid(cell)!r} at {where}: it is a name IPython binds "
                f"itself as cells run, which the grader does not put back; rename it"
                + (", or bind it in the test" if in_test else ""))
    return (f"the unlocked cell at {where}, which students may rewrite: make that cell "
            f"{given}" + (f", or bind {name!r} in the test" if in_test else ""))


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


# ---- fairness warnings ----------------------------------------------------------------
# A graded cell with more assertion checks than this mixes behaviours; see
# modules/AUTHORING.md ("Fair tests") for why the line is drawn here.
MAX_CHECKS_PER_CELL = 10
# ``str(error).lower()`` and the like: still the message, compared without case
_CASE_METHODS = {"lower", "casefold", "upper"}
_WORD_CHAR = re.compile(r"\w")


def _hidden_lines(cell: Cell) -> set[int]:
    """File lines of ``cell`` that lie inside its hidden-test regions."""
    lines: set[int] = set()
    inside = False
    for lineno, text in cell.body:
        stripped = text.strip()
        if stripped == BEGIN_HIDDEN:
            inside = True
        elif stripped == END_HIDDEN:
            inside = False
        elif inside:
            lines.add(lineno)
    return lines


def visible_text(parsed: ParsedModule) -> str:
    """What a student reads: markdown cells, and code cells without their solution and
    hidden-test regions (given code, docstrings, visible tests, demos)."""
    chunks: list[str] = []
    for cell in parsed.cells:
        inside = False
        kept = []
        for _, text in cell.body:
            stripped = text.strip()
            if stripped in (BEGIN_SOLUTION, BEGIN_HIDDEN):
                inside = True
            elif stripped in (END_SOLUTION, END_HIDDEN):
                inside = False
            elif not inside:
                kept.append(text)
        chunks.append("\n".join(kept))
    return "\n".join(chunks)


def _cell_tree(cell: Cell) -> ast.Module | None:
    try:
        return ast.parse(cell.source)
    except SyntaxError:
        return None


def _file_line(cell: Cell, node: ast.AST) -> int:
    """The file line of an AST node of ``cell.source`` (whose line 1 is the first body line)."""
    index = getattr(node, "lineno", 1) - 1
    return cell.body[min(max(index, 0), len(cell.body) - 1)][0]


class _Messages:
    """Which expressions of a test cell stand for an exception's message.

    ``except ... as error`` and ``with pytest.raises(...) as info`` bind exceptions;
    ``str(error)``, ``repr(error)``, ``str(info.value)``, ``error.args`` are messages, and so
    is a name assigned one of them (``message = str(error)``), also after ``.lower()``.
    """

    def __init__(self, tree: ast.AST) -> None:
        self.errors: set[str] = set()
        self.messages: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ExceptHandler) and node.name:
                self.errors.add(node.name)
            elif isinstance(node, ast.withitem) and isinstance(node.optional_vars, ast.Name):
                call = node.context_expr
                if isinstance(call, ast.Call) and _callee(call) == "raises":
                    self.errors.add(node.optional_vars.id)
        assigns = [n for n in ast.walk(tree) if isinstance(n, ast.Assign)]
        changed = True
        while changed:  # follow `err = error`, `message = str(err)` to a fixed point
            changed = False
            for node in assigns:
                names = [t.id for t in node.targets if isinstance(t, ast.Name)]
                if self.is_error(node.value):
                    new = set(names) - self.errors
                    self.errors |= new
                elif self.is_message(node.value):
                    new = set(names) - self.messages
                    self.messages |= new
                else:
                    continue
                changed = changed or bool(new)

    def is_error(self, node: ast.AST) -> bool:
        if isinstance(node, ast.Name):
            return node.id in self.errors
        # pytest's ExceptionInfo: info.value is the exception
        return (isinstance(node, ast.Attribute) and node.attr == "value"
                and isinstance(node.value, ast.Name) and node.value.id in self.errors)

    def is_message(self, node: ast.AST) -> bool:
        return self.message_case(node) is not None

    def message_case(self, node: ast.AST) -> bool | None:
        """None if ``node`` is no message; else True when compared case-sensitively."""
        if isinstance(node, ast.Name) and node.id in self.messages:
            return True
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                and node.func.id in ("str", "repr") and len(node.args) == 1:
            return True if self.is_error(node.args[0]) else None
        if isinstance(node, ast.Attribute) and node.attr == "args" and self.is_error(node.value):
            return True
        if isinstance(node, ast.Subscript):
            return self.message_case(node.value)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and node.func.attr in _CASE_METHODS:
            return False if self.message_case(node.func.value) is not None else None
        return None


def _callee(call: ast.Call) -> str:
    func = call.func
    if isinstance(func, ast.Attribute):
        return func.attr
    return func.id if isinstance(func, ast.Name) else ""


def _loop_values(tree: ast.AST) -> dict[str, list[ast.AST]]:
    """Loop variable -> the literal values it takes, for
    ``for word in ("a", "b")`` and ``for x, word in ((..., "a"), (..., "b"))``."""
    found: dict[str, list[ast.AST]] = {}
    for node in ast.walk(tree):
        if not isinstance(node, ast.For) or not isinstance(node.iter, (ast.Tuple, ast.List)):
            continue
        items = node.iter.elts
        if isinstance(node.target, ast.Name):
            found[node.target.id] = list(items)
        elif isinstance(node.target, ast.Tuple):
            for pos, target in enumerate(node.target.elts):
                if isinstance(target, ast.Name):
                    found[target.id] = [
                        item.elts[pos] for item in items
                        if isinstance(item, (ast.Tuple, ast.List)) and len(item.elts) > pos]
    return found


@dataclass
class _WordCheck:
    """One assertion about the words of an exception message."""

    node: ast.AST  # the comparison (or call) that checks the words
    words: list[str]
    case_sensitive: bool
    spent: list[ast.AST]  # the literals that hold the words


def _strings(node: ast.AST, loops: dict[str, list[ast.AST]]) -> tuple[list[str], list[ast.AST]]:
    """The words ``node`` stands for (a string literal, or a loop variable over literals)
    and the literal nodes that hold them."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value], [node]
    if isinstance(node, ast.Name) and node.id in loops:
        held = [v for v in loops[node.id]
                if isinstance(v, ast.Constant) and isinstance(v.value, str)]
        return [v.value for v in held], list(held)
    return [], []


def _word_helpers(parsed: ParsedModule) -> dict[str, tuple[list[str], str | None]]:
    """Functions of the module that check a message for words passed to them:
    name -> (the names of its positional parameters, the one that holds words or None
    when ``*words`` does). Such as ``expect_error(error, action, *words)``."""
    helpers: dict[str, tuple[list[str], str | None]] = {}
    for cell in parsed.cells:
        tree = _cell_tree(cell) if cell.cell_type == "code" else None
        if tree is None:
            continue
        for func in ast.walk(tree):
            if not isinstance(func, ast.FunctionDef):
                continue
            params = [a.arg for a in func.args.posonlyargs + func.args.args]
            vararg = func.args.vararg.arg if func.args.vararg else None
            messages = _Messages(func)
            sources = {n.target.id: n.iter.id for n in ast.walk(func)
                       if isinstance(n, ast.For) and isinstance(n.target, ast.Name)
                       and isinstance(n.iter, ast.Name)}  # for word in words
            for node in ast.walk(func):
                if not (isinstance(node, ast.Compare) and len(node.ops) == 1
                        and isinstance(node.ops[0], ast.In) and isinstance(node.left, ast.Name)
                        and messages.is_message(node.comparators[0])):
                    continue
                name = sources.get(node.left.id, node.left.id)
                if name == vararg:
                    helpers[func.name] = (params, None)
                elif name in params:
                    helpers[func.name] = (params, name)
    return helpers


def _word_checks(tree: ast.AST, messages: _Messages,
                 helpers: dict[str, tuple[list[str], str | None]]) -> list[_WordCheck]:
    """Every check in ``tree`` that a message contains, starts or ends with given words."""
    loops = _loop_values(tree)
    checks: list[_WordCheck] = []

    def strings(node: ast.AST) -> tuple[list[str], list[ast.AST]]:
        return _strings(node, loops)

    for node in ast.walk(tree):
        if isinstance(node, ast.Compare) and len(node.ops) == 1:
            op, right = node.ops[0], node.comparators[0]
            if isinstance(op, ast.In):
                case = messages.message_case(right)
                words, spent = strings(node.left)
            elif isinstance(op, ast.Eq):
                case = messages.message_case(node.left)
                words, spent = strings(right)
                if case is None:
                    case = messages.message_case(right)
                    words, spent = strings(node.left)
            else:
                continue
            if case is not None and words:
                checks.append(_WordCheck(node, words, case, spent))
        elif isinstance(node, ast.Call):
            name = _callee(node)
            if name in ("startswith", "endswith") and isinstance(node.func, ast.Attribute):
                case = messages.message_case(node.func.value)
                if case is not None and node.args:
                    words, spent = strings(node.args[0])
                    if words:
                        checks.append(_WordCheck(node, words, case, spent))
            elif name in ("search", "match", "fullmatch") and len(node.args) >= 2:
                case = messages.message_case(node.args[1])
                words, spent = strings(node.args[0])
                if case is not None and words:
                    checks.append(_WordCheck(node, [_unescape(w) for w in words], case, spent))
            if name in helpers and isinstance(node.func, ast.Name):
                params, holder = helpers[name]
                args = node.args[len(params):] if holder is None else [
                    a for i, a in enumerate(node.args) if i < len(params) and params[i] == holder
                ] + [k.value for k in node.keywords if k.arg == holder]
                for arg in args:
                    words, spent = strings(arg)
                    if words:
                        checks.append(_WordCheck(arg, words, True, spent))
            for keyword in node.keywords:  # pytest.raises(..., match="words")
                if keyword.arg == "match":
                    words, spent = strings(keyword.value)
                    if words:
                        checks.append(_WordCheck(keyword, [_unescape(w) for w in words], True,
                                                 spent))
    return checks


def _unescape(pattern: str) -> str:
    """A regular expression's literal text (``re.escape`` undone, anchors dropped)."""
    return re.sub(r"\\(.)", r"\1", pattern.strip("^$"))


def _failure_texts(tree: ast.AST) -> list[ast.AST]:
    """Failure messages of a cell: ``assert ..., message``, ``AssertionError(message)``,
    printed text. Their words teach; they are not what the test feeds in."""
    found: list[ast.AST] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Assert) and node.msg is not None:
            found.append(node.msg)
        elif isinstance(node, ast.Call) and _callee(node) in ("AssertionError", "print"):
            found.extend(node.args)
    return found


def _supplied_text(tree: ast.AST, excluded: list[ast.AST]) -> str:
    """String literals and names of a cell, outside ``excluded`` subtrees: what the test
    itself feeds in (an argument's name, a key it deletes), which a message may echo."""
    skip: set[int] = set()
    for node in excluded:
        skip.update(id(n) for n in ast.walk(node))
    parts: list[str] = []
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            parts.append(node.value)
        elif isinstance(node, ast.Name):
            parts.append(node.id)
        elif isinstance(node, ast.Attribute):
            parts.append(node.attr)
        elif isinstance(node, ast.keyword) and node.arg:
            parts.append(node.arg)
    return "\n".join(parts)


def _contains(text: str, words: str, case_sensitive: bool) -> bool:
    """``words`` occur in ``text`` (whitespace runs equal; word boundaries at word ends)."""
    if not case_sensitive:
        text, words = text.casefold(), words.casefold()
    pattern = r"\s+".join(re.escape(part) for part in words.split())
    if not pattern:
        return True
    if _WORD_CHAR.match(words.strip()[0]):
        pattern = r"(?<!\w)" + pattern
    if _WORD_CHAR.match(words.strip()[-1]):
        pattern += r"(?!\w)"
    return re.search(pattern, text) is not None


def _count_checks(body: list[ast.stmt], helpers: set[str]) -> int:
    """Assertion checks among ``body``: an ``assert``, an ``np.testing.assert_*`` or
    module-helper call, a ``raise AssertionError``; a loop or a ``try`` that checks
    counts once, whatever it holds."""
    count = 0
    for stmt in body:
        if isinstance(stmt, ast.Assert):
            count += 1
        elif isinstance(stmt, (ast.For, ast.While, ast.Try)):
            count += 1 if _count_checks(_children_of(stmt), helpers) else 0
        elif isinstance(stmt, (ast.If, ast.With)):
            count += _count_checks(_children_of(stmt), helpers)
        elif isinstance(stmt, ast.Raise):
            exc = stmt.exc
            call = exc if isinstance(exc, ast.Call) else None
            if (call is not None and _callee(call) == "AssertionError") or (
                    isinstance(exc, ast.Name) and exc.id == "AssertionError"):
                count += 1
        elif isinstance(stmt, (ast.Expr, ast.Assign)) and isinstance(stmt.value, ast.Call):
            name = _callee(stmt.value)
            if name.startswith("assert_") or name in helpers:
                count += 1
    return count


def _children_of(stmt: ast.stmt) -> list[ast.stmt]:
    out: list[ast.stmt] = []
    for field_name in ("body", "orelse", "finalbody"):
        out.extend(getattr(stmt, field_name, []) or [])
    for handler in getattr(stmt, "handlers", []) or []:
        out.extend(handler.body)
    return out


def _assertion_helpers(parsed: ParsedModule) -> set[str]:
    """Functions defined in the module's non-graded cells whose body asserts something."""
    names: set[str] = set()
    for cell in parsed.cells:
        if cell.cell_type != "code" or cell.is_test:
            continue
        tree = _cell_tree(cell)
        if tree is None:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef) and any(
                    isinstance(n, ast.Assert) or (isinstance(n, ast.Raise) and isinstance(
                        n.exc, ast.Call) and _callee(n.exc) == "AssertionError")
                    for n in ast.walk(node)):
                names.add(node.name)
    return names


def fairness_warnings(parsed: ParsedModule) -> list[Problem]:
    """Warnings (never errors) about tests that are unfair to students.

    * a hidden test asserts words of an exception message that appear nowhere in what
      students read (:func:`visible_text`) nor in what the test itself feeds in;
    * a graded cell holds more than :data:`MAX_CHECKS_PER_CELL` assertion checks.
    """
    path = parsed.module.rel_source
    if parsed.notebook is None or len(parsed.notebook.cells) != len(parsed.cells):
        return []
    prose = visible_text(parsed)
    helpers = _assertion_helpers(parsed)
    word_helpers = _word_helpers(parsed)
    warnings: list[Problem] = []
    for cell in parsed.cells:
        if cell.cell_type != "code" or not cell.is_test or cell.is_solution:
            continue
        tree = _cell_tree(cell)
        if tree is None:
            continue
        hidden = _hidden_lines(cell)
        messages = _Messages(tree)
        checks = _word_checks(tree, messages, word_helpers)
        excluded = _failure_texts(tree) + [c.node for c in checks]
        excluded += [lit for c in checks for lit in c.spent]
        supplied = _supplied_text(tree, excluded)
        for check in checks:
            line = _file_line(cell, check.node)
            if line not in hidden:
                continue
            for words in check.words:
                if not re.search(r"[A-Za-z]", words):
                    continue  # a number or a shape: the value the message must show
                if _contains(prose, words, check.case_sensitive) or _contains(
                        supplied, words, check.case_sensitive):
                    continue
                warnings.append(Problem(
                    path, line,
                    f"hidden test asserts the message words {words!r}, which appear nowhere "
                    "in the notebook's prose or visible code: give the wording where the "
                    "error is specified, or check only the exception type, the argument "
                    "and the value"))
        n = _count_checks(tree.body, helpers)
        if n > MAX_CHECKS_PER_CELL:
            gid = cell.nbgrader.get("grade_id") if cell.nbgrader else None
            warnings.append(Problem(
                path, cell.header_line,
                f"graded cell {gid!r} makes {n} assertion checks (more than "
                f"{MAX_CHECKS_PER_CELL}): one slip costs all its points; split it into one "
                "cell per behaviour"))
    return sorted(set(warnings), key=lambda p: (p.path, p.line, p.message))
