"""The leak guard: nothing of a solution or a hidden test may reach ``release/``."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from coursekit.cells import MARKERS, cell_source, is_trivial, line_regions
from coursekit.course import CourseError, Module



class LeakError(CourseError):
    """Raised by the leak guard; ``leaks`` lists everything found."""

    def __init__(self, leaks: list[str]) -> None:
        self.leaks = leaks
        body = "\n".join(f"  {item}" for item in leaks)
        super().__init__(f"leak guard: {len(leaks)} problem(s) in release/:\n{body}")


@dataclass
class Secrets:
    """Stripped lines of a source notebook that students must not see."""

    solution: dict[str, str] = field(default_factory=dict)  # line -> cell id
    hidden: dict[str, str] = field(default_factory=dict)


def secrets_of(source_nb: dict) -> Secrets:
    """Non-trivial lines inside solution and hidden-test regions that appear nowhere else."""
    regions = line_regions(source_nb)
    out = Secrets()
    for kind, target in (("solution", out.solution), ("hidden", out.hidden)):
        for line, cid in regions[kind].items():
            if line not in regions["visible"] and not is_trivial(line):
                target[line] = cid
    return out


def _released_lines(nb: dict) -> list[tuple[str, str]]:
    """``(cell id, stripped line)`` of every source and text output line of a notebook."""
    out = []
    for cell in nb.get("cells", []):
        cid = cell.get("id", "?")
        texts = [cell_source(cell)]
        for output in cell.get("outputs", []) or []:
            text = output.get("text", "")
            texts.append("".join(text) if isinstance(text, list) else str(text))
            for value in (output.get("data") or {}).values():
                texts.append("".join(value) if isinstance(value, list) else str(value))
        for text in texts:
            out.extend((cid, line.strip()) for line in text.splitlines())
    return out


def check_release(release_dir: Path, modules: list[Module], source_root: Path) -> list[str]:
    """Every leak in ``release_dir`` (empty if clean).

    Expected content is exactly ``NN_name/name.ipynb`` per module; solution and hidden-test
    lines are read from ``source_root/source_notebooks``.
    """
    leaks: list[str] = []
    expected = {f"{m.folder}/{m.notebook_name}": m for m in modules}
    if not release_dir.is_dir():
        return [f"{release_dir}: release folder does not exist"]
    seen = set()
    for path in sorted(release_dir.rglob("*")):
        rel = path.relative_to(release_dir).as_posix()
        if path.is_dir():
            if rel not in {m.folder for m in modules}:
                leaks.append(f"release/{rel}/: unexpected folder")
            continue
        if rel not in expected:
            kind = "stray .py file (may hold solutions)" if path.suffix == ".py" else (
                "gradebook/database file" if path.suffix in {".db", ".sqlite", ".sqlite3"}
                or "gradebook" in path.name else "unexpected file")
            leaks.append(f"release/{rel}: {kind}")
            continue
        seen.add(rel)
        leaks.extend(_check_notebook(path, f"release/{rel}", expected[rel], source_root))
    for rel in sorted(set(expected) - seen):
        leaks.append(f"release/{rel}: expected notebook is missing")
    return leaks


def _check_notebook(path: Path, rel: str, module: Module, source_root: Path) -> list[str]:
    leaks = []
    text = path.read_text(encoding="utf-8", errors="replace")
    for marker in MARKERS:
        if marker in text:
            leaks.append(f"{rel}: contains the marker {marker!r}")
    try:
        nb = json.loads(text)
    except json.JSONDecodeError as exc:
        return [*leaks, f"{rel}: not valid JSON ({exc})"]
    src_path = source_root / "source_notebooks" / module.folder / module.notebook_name
    try:
        source_nb = json.loads(src_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        return [*leaks, f"{rel}: cannot read its source notebook {src_path}: {exc}"]
    secrets = secrets_of(source_nb)
    reported = set()
    for cid, line in _released_lines(nb):
        if line in reported:
            continue
        if line in secrets.solution:
            reported.add(line)
            leaks.append(f"{rel}: cell {cid!r} contains solution code of source cell "
                         f"{secrets.solution[line]!r}: {line!r}")
        elif line in secrets.hidden:
            reported.add(line)
            leaks.append(f"{rel}: cell {cid!r} contains hidden test code of source cell "
                         f"{secrets.hidden[line]!r}: {line!r}")
    return leaks


def guard(release_dir: Path, modules: list[Module], source_root: Path) -> None:
    """Raise LeakError naming every leak in ``release_dir``."""
    leaks = check_release(release_dir, modules, source_root)
    if leaks:
        raise LeakError(leaks)
