"""``course check``: the CI gate.

(a) generated files are in sync with the modules (the milestone notebooks too); (b) every
solution notebook earns full marks; (c) every untouched release notebook earns zero; (d)
the student repository, as ``course publish`` would write it through each module, passes
the leak guard (its notebooks, package, milestones and everything else).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

from coursekit.authoring.build import build
from coursekit.authoring.milestones import milestones, needs
from coursekit.authoring.milestones import stale as stale_milestones
from coursekit.course import Course, CourseError, Module
from coursekit.grading.session import GradingOptions, GradingSession
from coursekit.text import number
from coursekit.grading.records.results import Job, default_workers
from coursekit.authoring.lint import LintError
from coursekit.authoring.release import generate


def stale_files(course: Course, modules: list[Module], fresh: Path) -> list[str]:
    """Generated files that differ from a fresh build in ``fresh`` (or should not exist)."""
    stale = []
    for m in modules:
        f = Module(m.number, m.name, fresh)
        for committed, new in ((m.source_notebook, f.source_notebook),
                               (m.release_notebook, f.release_notebook),
                               (m.export, f.export)):
            rel = committed.relative_to(course.root).as_posix()
            if not committed.is_file():
                stale.append(f"{rel} (missing)")
            elif committed.read_bytes() != new.read_bytes():
                stale.append(f"{rel} (differs from a fresh build)")
    folders = {m.folder for m in course.modules()}
    names = {m.name for m in course.modules()}
    for top in ("source_notebooks", "release"):
        base = course.root / top
        if not base.is_dir():
            continue
        for path in sorted(base.rglob("*")):
            rel = path.relative_to(course.root).as_posix()
            parts = path.relative_to(base).parts
            if path.is_file() and not (len(parts) == 2 and parts[0] in folders
                                       and parts[1] == f"{parts[0][3:]}.ipynb"):
                stale.append(f"{rel} (not generated from any module)")
    core = course.root / "tinytorch" / "core"
    if core.is_dir():
        for path in sorted(core.glob("*.py")):
            if path.name != "__init__.py" and path.stem not in names:
                stale.append(f"{path.relative_to(course.root).as_posix()} "
                             "(not generated from any module)")
    for milestone in milestones(course):
        try:
            needs(course, milestone)
        except CourseError as exc:
            stale.append(f"{milestone.rel_source} ({exc})")
    stale.extend(stale_milestones(course))
    return stale


def _check_releases(course: Course, log: Callable[[str], None]) -> bool:
    """(d): the leak guard over the student repository of every release; True if clean."""
    from coursekit.publishing.publish import guard_releases

    if not (course.root / "binder").is_dir():
        log("check (d): skipped: the course has no binder/, so no student repository to "
            "publish")
        return True
    problems = {folder: found for folder, found in guard_releases(course).items() if found}
    if not problems:
        log(f"check (d): the student repository passes the leak guard at every release "
            f"(--through {course.modules()[0].number} .. {course.modules()[-1].number})")
        return True
    for folder, found in problems.items():
        log(f"check (d): FAILED: the student repository published --through {folder[:2]}:")
        for item in found:
            log(f"  {item}")
    return False


def check(course: Course, wanted: list[str] | None = None, *, skip_grading: bool = False,
          log: Callable[[str], None] = print, workers: int | None = None) -> bool:
    """Run the gate; print a per-module table; True if everything passes.

    The notebooks are graded by ``workers`` worker processes (default: one per core).
    """
    modules = course.select(wanted)
    if not modules:
        raise CourseError(f"{course.root}/modules: no module files found")
    for missing in course.missing_files():
        log(f"check: skipping {missing} (file does not exist yet)")
    ok = True
    rows: dict[str, list[str]] = {m.folder: [m.folder, "-", "-", "-"] for m in modules}
    with tempfile.TemporaryDirectory(prefix="course-check-") as tmp:
        fresh = Path(tmp) / "fresh"
        log("check (a): rebuilding into a temporary folder")
        try:
            build(course, [m.folder for m in modules], out_root=fresh, check_import=False,
                  log=lambda line: None)
            generate(course, modules, fresh / "release", source_root=fresh)
        except LintError as exc:
            log(f"check (a): {exc}")
            return False
        stale = stale_files(course, modules, fresh)
        for m in modules:
            rows[m.folder][1] = "stale" if any(m.folder in s or f"/{m.name}.py" in s
                                               for s in stale) else "ok"
        if stale:
            ok = False
            log("check (a): FAILED: these generated files are stale; "
                "run `course build && course release`:")
            for item in stale:
                log(f"  {item}")
        else:
            log("check (a): generated files are in sync")
        if not stale:
            ok = _check_releases(course, log) and ok
        if not skip_grading:
            jobs = []
            for m in modules:
                for student, path, col in (("solution", m.source_notebook, 2),
                                           ("blank", m.release_notebook, 3)):
                    if path.is_file():
                        jobs.append(Job(student, m, path))
                    else:
                        rows[m.folder][col] = "missing"
                        ok = False
            options = GradingOptions(
                feedback=False, workers=default_workers() if workers is None else workers)
            with GradingSession(course, Path(tmp) / "grading", modules=modules,
                                options=options, log=lambda line: None) as session:
                graded = session.grade_all(jobs)
            by_job = {(r.student, r.assignment): r for r in graded}
            for job in jobs:
                m, student = job.module, job.student
                r = by_job[(student, m.folder)]
                col = 2 if student == "solution" else 3
                want = r.max_score if student == "solution" else 0
                good = r.status == "graded" and r.score == want and r.max_score > 0
                mark = "ok" if good else "FAIL"
                rows[m.folder][col] = f"{number(r.score)}/{number(r.max_score)} {mark}"
                if not good:
                    ok = False
                    expect = "full marks" if student == "solution" else "zero"
                    part = "b" if col == 2 else "c"
                    log(f"check ({part}): {m.folder} {student} notebook "
                        f"should earn {expect}: {r.status}, {r.reason}")
                log(f"check: graded {m.folder} {student}: {number(r.score)}/{number(r.max_score)}")
    header = ["module", "(a) in sync", "(b) solution", "(c) blank"]
    table = [header, *rows.values()]
    widths = [max(len(r[i]) for r in table) for i in range(4)]
    log("")
    for i, r in enumerate(table):
        log("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
        if i == 0:
            log("  ".join("-" * w for w in widths))
    log(f"check: {'passed' if ok else 'FAILED'}")
    return ok
