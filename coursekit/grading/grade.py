"""``course grade``: autograde submissions with nbgrader, feedback HTML and ``grades.csv``."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from coursekit import nbg, settings
from coursekit.course import Course, CourseError, Module
from coursekit.grading.records import changes, database
from coursekit.grading.records import deadlines
from coursekit.grading.execution import sandbox as sb
from coursekit.text import duration, number
from coursekit.released import released_modules, require_released, through_setting
from coursekit.grading.session import GradingOptions, GradingSession
from coursekit.grading.records.results import (
    NOT_DUE,
    Job,
    Result,
    RunRecord,
    default_workers,
    gradebook_results,
    max_points,
    print_summary,
    write_csv,
)
from coursekit.grading.dispatch.bundle import (
    grader_digest,
    submission_digest,
)
from coursekit.grading.dispatch.cluster import ClusterStopped
from coursekit.grading.records.gradebook import record_names
from coursekit.grading.records.root import (
    ROOT_CONFIG,
    GradingRoot,
    choose_gradebook,
)

if TYPE_CHECKING:
    pass

COPY_SUFFIX = re.compile(r"(\s*\(\d+\)|-\d+|_\d+|\s+copy(\s*\d+)?)$", re.IGNORECASE)


def looks_like(filename: str, module: Module) -> bool:
    """Whether ``filename`` is probably ``module``'s notebook under another name:
    ``Tensor.ipynb``, ``tensor (1).ipynb``, ``tensor-2.ipynb``, ``01_tensor.ipynb``."""
    path = Path(filename)
    if path.suffix.lower() != ".ipynb":
        return False
    stem = path.stem.strip().lower()
    while True:
        shorter = COPY_SUFFIX.sub("", stem).strip()
        if shorter == stem:
            break
        stem = shorter
    return stem in (module.name, module.folder, f"{int(module.number)}_{module.name}")


def misnamed_hint(path: Path, module: Module, submissions: Path) -> str:
    """For a missing ``path``: the notebook nearby that was probably meant, or what the
    module folder holds instead (empty if there is nothing to say)."""
    folder, student_dir = path.parent, path.parent.parent
    places = [folder] if folder.is_dir() else []
    places.append(student_dir)
    if student_dir.is_dir():
        places += [d for d in sorted(student_dir.iterdir()) if d.is_dir() and d != folder
                   and looks_like(d.name + ".ipynb", module)]
    near = [p for place in places for p in sorted(place.glob("*.ipynb")) if p.is_file()]
    rel = path.relative_to(submissions)
    likely = [p for p in near if looks_like(p.name, module)]
    if likely:
        names = ", ".join(str(p.relative_to(submissions)) for p in likely[:3])
        return f"found {names}: rename or move it to {rel}"
    inside = [p.name for p in near if p.parent == folder]
    if inside:
        return f"{folder.name}/ holds {', '.join(inside[:3])}, not {module.notebook_name}"
    return ""


def collect_jobs(submissions: Path, modules: list[Module],
                 log: Callable[[str], None] = print,
                 course_folders: set[str] | None = None,
                 students: list[str] | None = None) -> list[Job]:
    """A job per (student folder, module): the expected notebook path, present or not.

    ``students`` limits the jobs to those student folders. A missing notebook's job carries
    a hint when a misnamed one sits nearby (``Tensor.ipynb``, ``tensor (1).ipynb``).
    """
    if not submissions.is_dir():
        raise CourseError(f"--submissions {submissions}: not a folder "
                          "(expected DIR/<student_id>/<NN_name>/<name>.ipynb)")
    found = sorted(p.name for p in submissions.iterdir()
                   if p.is_dir() and not p.name.startswith("."))
    if not found:
        raise CourseError(f"--submissions {submissions}: no student folders "
                          "(expected DIR/<student_id>/<NN_name>/<name>.ipynb)")
    for loose in sorted(submissions.glob("*.ipynb")):
        log(f"grade: ignoring {loose.name} at the top of {submissions} (a notebook belongs in "
            "DIR/<student_id>/<NN_name>/<name>.ipynb)")
    known = course_folders or {m.folder for m in modules}
    _check_layout(submissions, found, known)
    if students:
        unknown = [s for s in students if s not in found]
        if unknown:
            shown = ", ".join(found[:10]) + (", ..." if len(found) > 10 else "")
            raise CourseError(f"--student {unknown[0]}: no such student folder in "
                              f"{submissions} (students: {shown})")
        found = [s for s in found if s in students]
    jobs = []
    for student in found:
        for extra in sorted((submissions / student).iterdir()):
            if extra.is_dir() and extra.name not in known:
                log(f"grade: ignoring {student}/{extra.name}/ (not an assignment of this course)")
        for module in modules:
            path = submissions / student / module.folder / module.notebook_name
            hint = "" if path.exists() else misnamed_hint(path, module, submissions)
            jobs.append(Job(student, module, path, hint))
    return jobs


def _check_layout(submissions: Path, found: list[str], modules: set[str]) -> None:
    """Refuse a submissions folder one level off: a module folder where a student folder
    belongs (one student's folder given), or folders that hold student folders (the
    folder above the submissions given)."""
    layout = "expected DIR/<student_id>/<NN_name>/<name>.ipynb"
    wrong = [name for name in found if name in modules]
    if wrong:
        raise CourseError(f"--submissions {submissions}: {wrong[0]}/ is a module folder where a "
                          f"student's folder belongs ({layout}); is it one student's folder? "
                          f"give the folder that holds the students' folders, e.g. "
                          f"{submissions.parent}")
    if any((submissions / name / m).is_dir() for name in found for m in modules):
        return
    deeper = sorted(f"{name}/{student.name}/{m}/" for name in found
                    for student in (submissions / name).iterdir() if student.is_dir()
                    for m in modules if (student / m).is_dir())
    if deeper:
        top = deeper[0].split("/", 1)[0]
        raise CourseError(f"--submissions {submissions}: no student folder holds a module "
                          f"folder, but {deeper[0]} does ({layout}); give the folder that "
                          f"holds the students' folders, e.g. {submissions / top}")


def in_gradebook(groot: GradingRoot, assignments: list[str]
                 ) -> dict[tuple[str, str], timedelta | None]:
    """The submissions of ``assignments`` in the course gradebook, with the extension each
    was granted (None if none)."""
    from nbgrader.api import MissingEntry

    nbg.create_gradebook(groot.db_url)
    found: dict[tuple[str, str], timedelta | None] = {}
    with nbg.gradebook(groot.db_url, groot.course_id) as gb:
        for assignment in assignments:
            try:
                subs = gb.assignment_submissions(assignment)
            except MissingEntry:
                continue
            for sub in subs:
                found[(sub.student_id, assignment)] = sub.extension or None
    return found


def _timestamp(job: Job) -> bytes | None:
    """The submission time as ``timestamp.txt`` next to the notebook holds it."""
    stamp = job.path.parent / "timestamp.txt"
    try:
        return stamp.read_bytes() if stamp.is_file() else None
    except OSError:
        return None


def is_late(stamp: bytes | None, due: datetime | None, extension: timedelta | None) -> bool:
    """Whether a submission handed in at ``stamp`` (``timestamp.txt``'s bytes) is late for
    ``due`` (naive UTC) with ``extension``, as nbgrader works it out; a time that cannot be
    read counts as late (its grade may depend on the late policy)."""
    from nbgrader.utils import parse_utc

    if stamp is None or due is None:
        return False
    try:
        when = parse_utc(stamp.decode("utf-8").strip())
    except (ValueError, OverflowError, UnicodeDecodeError):
        return True
    return when > due + (extension or timedelta(0))


def late_jobs(groot: GradingRoot, jobs: list[Job],
              extensions: dict[tuple[str, str], timedelta | None]) -> set[tuple[str, str]]:
    """The (student, module) of the ``jobs`` handed in late."""
    dates = deadlines.due_dates(groot.course)
    return {(j.student, j.module.folder) for j in jobs
            if is_late(_timestamp(j), dates.get(j.module.folder),
                       extensions.get((j.student, j.module.folder)))}


def fingerprints(groot: GradingRoot, jobs: list[Job],
                 extensions: dict[tuple[str, str], timedelta | None]
                 ) -> dict[tuple[str, str], str]:
    """For each job, what its grade depends on (:func:`submission_digest`: the grader, the
    file and its submission time) and the extension the gradebook grants it: the same
    fingerprint twice means the same grade twice. The late policy counts for a late
    submission only (the grader's digest is taken without it): a change to it grades only
    those again."""
    options = {"overrides": groot.overrides, "sandbox": groot.sandbox}
    without_late = settings.with_tables(groot.course, late=None)
    policy = json.dumps(settings.table(groot.course, "late"), sort_keys=True, default=str)
    late = late_jobs(groot, jobs, extensions)
    graders: dict[str, str] = {}
    out: dict[tuple[str, str], str] = {}
    for job in jobs:
        folder = job.module.folder
        if folder not in graders:
            graders[folder] = grader_digest(without_late, job.module, options)
        try:
            data: bytes | None = job.path.read_bytes() if job.path.is_file() else None
        except OSError:
            data = None
        when = _timestamp(job)
        key = (job.student, folder)
        extension = extensions.get(key)
        grader = graders[folder] + (f"; extension {extension}" if extension else "")
        if key in late:
            grader += f"; late policy {policy}"
        out[key] = submission_digest(grader, data, when)
    return out


def unchanged(groot: GradingRoot, prints: dict[tuple[str, str], str],
              stored: set[tuple[str, str]]) -> dict[tuple[str, str], Result]:
    """The jobs graded before with the same fingerprint, whose results are in the grading
    root's record (and, for those graded, whose submissions are still in the gradebook)."""
    recorded = RunRecord(groot.root).fingerprints()
    return {key: result for key, (result, fp) in recorded.items()
            if fp and not result.retry and prints.get(key) == fp
            and (result.status != "graded" or key in stored)}


def writable_folder(root: Path, option: str = "--out") -> Path:
    """``root`` made if needed; a :class:`CourseError` naming ``option`` if it cannot be
    written."""
    root = root.resolve()
    if root.exists() and not root.is_dir():
        raise CourseError(f"{option} {root}: not a folder")
    try:
        root.mkdir(parents=True, exist_ok=True)
        probe = root / ".course-write-test"
        probe.write_text("", encoding="utf-8")
        probe.unlink()
    except OSError as exc:
        raise CourseError(f"{option} {root}: cannot write there "
                          f"({exc.strerror or exc})") from None
    return root


def existing_root(course: Course, root: Path | None, db_url: str | None = None,
                  option: str = "--grading", who: str = "export",
                  log: Callable[[str], None] = print) -> GradingRoot:
    """A grading root ``course grade`` has filled (default ``grading/``), with the gradebook
    it keeps (recorded in its ``nbgrader_config.py``); ``db_url`` may name the same
    database (with a password, say), never another."""
    root = (root or course.root / "grading").resolve()
    config = root / ROOT_CONFIG
    if not config.is_file():
        raise CourseError(f"{option} {root}: not a grading root (no {ROOT_CONFIG}); "
                          "run `course grade` first")
    url = database.check(db_url) if db_url else None
    url = choose_gradebook(root, url, switch_option="", who=who, log=log)
    return GradingRoot(course, root, url)


def grade_rows(groot: GradingRoot, extra: list[Result] | None = None,
               log: Callable[[str], None] | None = None) -> list[Result]:
    """The rows of ``grades.csv``: every student and released assignment of the gradebook,
    with the run record's statuses and reasons (plus ``extra`` results not recorded yet)."""
    record = RunRecord(groot.root).latest()
    for r in extra or []:
        record[(r.student, r.assignment)] = r
    released = {m.folder for m in released_modules(groot.course)}
    return gradebook_results(groot.db_url, groot.course_id, record, released, log)


def write_grades(groot: GradingRoot, extra: list[Result] | None = None,
                 log: Callable[[str], None] | None = None) -> Path:
    """Write ``grades.csv`` in the grading root from its gradebook and run record (plus
    ``extra`` results not recorded yet); its path."""
    path = groot.root / "grades.csv"
    write_csv(grade_rows(groot, extra, log), path)
    return path


def as_in_gradebook(results: list[Result], rows: list[Result]) -> list[Result]:
    """``results`` with what the gradebook says of them now: the score with the late
    penalty taken off, how late, the extension; a notebook not handed in before its due
    date is ``not due``."""
    found = {(r.student, r.assignment): r for r in rows}
    for result in results:
        row = found.get((result.student, result.assignment))
        if row is None:
            continue
        result.score, result.max_score = row.score, row.max_score
        result.submitted, result.late = row.submitted, row.late
        result.penalty, result.extension = row.penalty, row.extension
        if row.status == NOT_DUE:
            result.status, result.reason = row.status, row.reason
    return results


def grade(course: Course, submissions: Path, out: Path | None = None, db_url: str | None = None,
          modules: list[str] | None = None, log: Callable[[str], None] = print, *,
          workers: int | None = None, feedback: bool = True,
          overrides: dict[str, dict[str, object]] | None = None,
          students: list[str] | None = None, sandbox: bool = True,
          scheduler: str | None = None, regrade: bool = False,
          switch_gradebook: bool = False,
          names: dict[str, dict[str, str | None]] | None = None) -> list[Result]:
    """Grade every submission under ``submissions``; write grades.csv in the grading root.

    ``workers`` grading processes (default: one per core; 0: in this process) share the
    submissions, or the workers of the Dask cluster whose scheduler is at ``scheduler``
    (``tcp://HOST:PORT``, :mod:`coursekit.grading.dispatch.cluster`); every result is merged
    into the course gradebook: the one the grading root keeps (recorded by its first run), or
    ``db_url`` for a new root; another ``db_url`` is refused unless ``switch_gradebook``.
    ``students`` limits grading to those student folders. ``names`` (student -> nbgrader's
    ``first_name``, ``last_name``, ``email``, ``lms_user_id``, as the roster gives them) are
    given to the gradebook's students.
    A submission graded before in this grading root from the same file by the same grader
    (module, configuration, course package, options) is not graded again unless ``regrade``:
    running the same command again after an interruption grades only what is missing.
    ``feedback=False`` skips the feedback HTML. ``overrides`` are nbgrader config values on
    top of grader_config.py, e.g. ``{"LimitedExecute": {"notebook_timeout": 60}}``.
    ``sandbox=False`` grades without the sandbox (:mod:`coursekit.grading.execution.sandbox`):
    only for trusted notebooks; with it on, grading stops before it starts if the sandbox cannot
    run.

    ``grades.csv`` is written from the gradebook: every student and assignment in it, not
    only those graded now. On Ctrl-C, or when the Dask scheduler is lost, it is written for
    what was saved, the submissions not graded are named, and the exception is raised again.
    """
    if not course.modules():
        raise CourseError(f"{course.root}/modules: no module files found")
    if modules:
        chosen = course.select(modules)
        require_released(course, chosen)
    else:
        chosen = released_modules(course)
        if len(chosen) < len(course.modules()):
            span = "-".join(dict.fromkeys([chosen[0].number, chosen[-1].number]))
            log(f"grade: modules {span}, those released so far (course.toml "
                f"[student_repository] through = \"{through_setting(course)}\")")
    if scheduler is not None and workers is not None:
        raise CourseError(f"--workers {workers} and --scheduler {scheduler}: give one of them "
                          "(with --scheduler the Dask workers grade)")
    n = default_workers() if workers is None else workers
    if n < 0:
        raise CourseError(f"--workers {n}: must be 0 (in this process) or more")
    if scheduler is not None:
        from coursekit.grading.dispatch.cluster import check_address

        check_address(scheduler)
    deadlines.policy(course)  # bad [due] or [late] settings stop here, before any work
    deadlines.due_dates(course)
    if switch_gradebook and not db_url:
        raise CourseError("--switch-gradebook: give the gradebook to switch to with --db-url")
    url = database.check(db_url) if db_url else None
    target = out or course.root / "grading"
    if target.exists() and not target.is_dir():
        raise CourseError(f"--out {target}: not a folder")
    url = choose_gradebook(target, url, switch=switch_gradebook, log=log)
    jobs = collect_jobs(submissions.resolve(), chosen, log,
                        course_folders={m.folder for m in course.modules()}, students=students)
    if sandbox and scheduler is None:
        sb.probe(course, chosen[-1])  # SandboxUnavailable: why, and how to get it
    root = writable_folder(target)
    options = GradingOptions(sandbox=sandbox, feedback=feedback,
                             workers=0 if scheduler is not None else n, scheduler=scheduler,
                             overrides=overrides or {})
    with GradingSession(course, root, db_url=url, modules=chosen, options=options,
                        log=log) as session:
        groot = session.groot
        state = in_gradebook(groot, [m.folder for m in chosen])
        prints = fingerprints(groot, jobs, state)
        kept = {} if regrade else unchanged(groot, prints, set(state))
        if kept:
            log(f"grade: {len(kept)} of {len(jobs)} submission(s) unchanged since this grading "
                "root graded them: kept (--regrade grades them again)")
        todo = [j for j in jobs if (j.student, j.module.folder) not in kept]
        late = late_jobs(groot, todo, state)
        graded_under = changes.current(course, chosen)
        changes.explain(changes.read(groot.root), graded_under,
                        {m.folder: sum(1 for s, f in late if f == m.folder) for m in chosen},
                        log)
        saved: list[Result] = []
        started = time.monotonic()

        def progress(result: Result, done: int, total: int) -> None:
            saved.append(result)
            elapsed = time.monotonic() - started
            left = elapsed / done * (total - done)
            cluster = session.cluster
            where = f", {cluster.connected} Dask worker(s)" if cluster is not None else ""
            log(f"grade [{done}/{total}] {result.student} {result.assignment}: "
                f"{number(result.score)}/{number(result.max_score)} {result.status}"
                f"{' FLAGGED' if result.flagged else ''}  "
                f"(elapsed {duration(elapsed)}, about {duration(left)} left{where})")

        results: list[Result] = []
        if todo:
            try:
                session.open(len(todo))
                results = session.grade_all(todo, prints, progress)
            except KeyboardInterrupt:
                _report_interrupt(groot, todo, saved, log)
                raise
            except ClusterStopped as exc:
                _report_interrupt(groot, todo, saved, log, why=str(exc))
                raise
        if not students:  # a module is graded under these settings once all of it is
            changes.write(groot.root, graded_under)
        if names:
            named = record_names(groot.db_url, groot.course_id, names)
            if named:
                log(f"grade: names of {named} student(s) from the roster written to the "
                    "gradebook")
        rows = grade_rows(groot, log=lambda line: log(f"grade: {line}"))
        csv_path = groot.root / "grades.csv"
        write_csv(rows, csv_path)
        everything = sorted([*kept.values(), *results], key=lambda r: (r.assignment, r.student))
        as_in_gradebook(everything, rows)
        print_summary(everything, time.monotonic() - started, log, kept=len(kept))
        if session.cluster is not None and todo:
            log(session.cluster.summary())
        if not sandbox:
            log("grade: WARNING: graded WITHOUT the sandbox (--no-sandbox): the submissions' "
                "code could read and change the grader's files; grades.csv says sandboxed=no")
        log(f"grade: wrote {csv_path} (every student and assignment in the gradebook); "
            f"feedback in {groot.root / 'feedback'}")
        return everything


def _report_interrupt(groot: GradingRoot, jobs: list[Job], saved: list[Result],
                      log: Callable[[str], None], why: str = "grading was interrupted") -> None:
    """After Ctrl-C or a lost cluster: grades.csv for what was saved, and what was not
    graded."""
    done = {(r.student, r.assignment) for r in saved}
    left = [j for j in jobs if (j.student, j.module.folder) not in done]
    head = "interrupted" if why == "grading was interrupted" else f"stopped ({why})"
    log(f"grade: {head}: {len(saved)} of {len(jobs)} submission(s) graded and saved "
        "in the gradebook")
    unfinished = [Result(j.student, j.module.folder, 0, max_points(j.module.source_notebook),
                         "not graded", f"{why} before this submission")
                  for j in left]
    try:
        path = write_grades(groot, unfinished)
        log(f"grade: wrote {path} from the gradebook")
    except Exception as exc:  # the gradebook may be what was being interrupted
        log(f"grade: could not write grades.csv ({type(exc).__name__}: {exc})")
    if left:
        names = ", ".join(f"{j.student} {j.module.folder}" for j in left[:10])
        more = f" and {len(left) - 10} more" if len(left) > 10 else ""
        log(f"grade: not graded ({len(left)}): {names}{more}; run the same command again "
            "to grade them (those graded are kept; --regrade grades everything again)")
