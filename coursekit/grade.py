"""``course grade``: autograde submissions with nbgrader, feedback HTML and ``grades.csv``.

Grading one submission is an independent unit (:func:`grade_one`): it reads only its own
file and writes only its own folders under the grading root and its own rows in the
gradebook, so submissions can later be spread over worker processes.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import nbformat

from coursekit import nbg
from coursekit.course import Course, CourseError, Module
from coursekit.feedback import leaked_lines
from coursekit.flags import kernel_flags, review
from coursekit.leaks import cell_source, secrets_of

STUDENT_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
CSV_FIELDS = ["student", "assignment", "score", "max_score", "status", "reason", "flagged"]
BLAS_THREADS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


@dataclass
class Job:
    """One submission to grade: a student's notebook for one module (it may be missing)."""

    student: str
    module: Module
    path: Path


@dataclass
class Result:
    """The outcome of grading one submission (one row of ``grades.csv``)."""

    student: str
    assignment: str
    score: float
    max_score: float
    status: str  # graded | missing | empty | corrupt | invalid | error
    reason: str = ""
    feedback: str = ""
    failed: list[str] = field(default_factory=list)
    flagged: str = ""  # for the instructor's review: why, "; "-separated

    def row(self) -> dict[str, str]:
        """The CSV row."""
        data = asdict(self)
        data["score"] = _num(self.score)
        data["max_score"] = _num(self.max_score)
        return {k: str(data[k]) for k in CSV_FIELDS}


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:.2f}"


@dataclass
class GradingRoot:
    """An nbgrader course root used for grading (outside the course's tracked folders)."""

    course: Course
    root: Path
    db_url: str
    overrides: dict[str, dict[str, object]] = field(default_factory=dict)

    @property
    def config(self):  # noqa: ANN201 - traitlets Config
        cfg = nbg.load_config(self.course, root=self.root, db_url=self.db_url)
        for section, values in self.overrides.items():
            for key, value in values.items():
                cfg[section][key] = value
        return cfg

    def report(self, job: Job) -> Path:
        """Where the limits write what they did while grading ``job``."""
        return self.root / "reports" / job.student / job.module.folder / "limits.json"

    def submitted(self, job: Job) -> Path:
        return self.root / "submitted" / job.student / job.module.folder / job.module.notebook_name

    def autograded(self, job: Job) -> Path:
        return self.root / "autograded" / job.student / job.module.folder / job.module.notebook_name

    def feedback(self, job: Job) -> Path:
        name = Path(job.module.notebook_name).with_suffix(".html").name
        return self.root / "feedback" / job.student / job.module.folder / name


def max_points(source_notebook: Path) -> float:
    """Total points of the graded cells of a source notebook."""
    nb = json.loads(source_notebook.read_text(encoding="utf-8"))
    total = 0.0
    for cell in nb.get("cells", []):
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("grade"):
            total += float(meta.get("points", 0))
    return total


@contextmanager
def kernel_environment(course: Course) -> Iterator[None]:
    """Let kernels started by nbgrader find this Python's tools and the course's package.

    The environment is put back on exit, so grading one course (a test's fixture, say)
    does not change which ``tinytorch`` later kernels of the same process import.
    """
    saved = os.environ.copy()
    nbg.ensure_tools_on_path()
    for var in BLAS_THREADS:  # one BLAS thread per kernel: grading runs several at once
        os.environ.setdefault(var, "1")
    parts = os.environ.get("PYTHONPATH", "").split(os.pathsep)
    if str(course.root) not in parts:
        os.environ["PYTHONPATH"] = os.pathsep.join([str(course.root), *filter(None, parts)])
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def open_root(course: Course, root: Path, db_url: str | None = None,
              overrides: dict[str, dict[str, object]] | None = None) -> GradingRoot:
    """Make ``root`` an nbgrader course folder with the course's config (no notebooks yet)."""
    root = root.resolve()
    inside = root.relative_to(course.root).parts if root.is_relative_to(course.root) else ()
    if inside and inside[0] in {"modules", "source_notebooks", "release", "tinytorch",
                                "coursekit", "tests", "examples", "docs"}:
        raise CourseError(f"--out {root}: the grading root must not be inside a tracked folder "
                          f"({inside[0]}/); use e.g. grading/")
    root.mkdir(parents=True, exist_ok=True)
    groot = GradingRoot(course, root, db_url or "sqlite:///" + str(root / "gradebook.db"),
                        dict(overrides or {}))
    (root / "nbgrader_config.py").write_text(
        "# Generated by `course grade`: the course's nbgrader config, rooted here.\n"
        f"load_subconfig({str(course.config_file)!r})  # noqa: F821\n"
        f"c = get_config()  # noqa: F821\nc.CourseDirectory.root = {str(root)!r}\n"
        f"c.CourseDirectory.db_url = {groot.db_url!r}\n",
        encoding="utf-8",
    )
    return groot


def fill_root(groot: GradingRoot, modules: list[Module],
              log: Callable[[str], None] = print) -> GradingRoot:
    """Copy the modules' source notebooks into the grading root; register them in the gradebook."""
    course, root = groot.course, groot.root
    with kernel_environment(course):
        cfg = groot.config
        nbg.create_gradebook(groot.db_url)
        for module in modules:
            src = module.source_notebook
            if not src.is_file():
                raise CourseError(
                    f"source_notebooks/{module.folder}/{module.notebook_name}: missing; "
                    f"run `course build --module {module.number}` first")
            dest = root / "source_notebooks" / module.folder / module.notebook_name
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dest)
            result = nbg.run("generate_assignment", cfg, module.folder)
            if not result.get("success"):
                raise CourseError(
                    f"grading root {root}: generate_assignment {module.folder} failed (if this "
                    "root graded an older version of the module, grade into a new --out or "
                    "remove the root):\n" + nbg.failure_text(result))
        log(f"grade: grading root {root} (gradebook {groot.db_url})")
        return groot


def prepare_root(course: Course, root: Path, modules: list[Module], db_url: str | None = None,
                 log: Callable[[str], None] = print,
                 overrides: dict[str, dict[str, object]] | None = None) -> GradingRoot:
    """Set up ``root`` as an nbgrader course: source notebooks, gradebook, release."""
    return fill_root(open_root(course, root, db_url, overrides), modules, log)


def precheck(path: Path) -> tuple[str, str] | None:
    """``(status, reason)`` if the file cannot be graded at all, else None."""
    if not path.exists():
        return "missing", f"no submission: {path.parent.name}/{path.name} not found"
    if not path.is_file():
        return "invalid", f"{path.name} is not a file"
    try:
        data = path.read_bytes()
    except OSError as exc:
        return "invalid", f"cannot read {path.name}: {exc.strerror}"
    if not data.strip():
        return "empty", f"{path.name} is empty ({len(data)} bytes)"
    try:
        text = data.decode("utf-8")
        raw = json.loads(text)
    except UnicodeDecodeError as exc:
        return "corrupt", f"{path.name} is not UTF-8 text (byte {exc.start})"
    except json.JSONDecodeError as exc:
        return "corrupt", (f"{path.name} is not valid JSON "
                           f"(line {exc.lineno}, column {exc.colno}: {exc.msg})")
    if not isinstance(raw, dict) or "cells" not in raw:
        return "corrupt", f"{path.name} is JSON but not a notebook (no 'cells')"
    try:
        nb = nbformat.reads(text, as_version=4)
        nbformat.validate(nb)
    except Exception as exc:  # nbformat raises several kinds
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return "invalid", f"{path.name} is not a valid notebook: {msg[:200]}"
    return None


def _clear_job(groot: GradingRoot, job: Job) -> None:
    for path in (groot.submitted(job), groot.autograded(job), groot.feedback(job),
                 groot.report(job)):
        if path.parent.exists():
            shutil.rmtree(path.parent)


def _forget_submission(groot: GradingRoot, job: Job) -> None:
    from nbgrader.api import MissingEntry

    with nbg.gradebook(groot.db_url) as gb:
        gb.update_or_create_student(job.student)
        try:
            gb.find_submission(job.module.folder, job.student)
        except MissingEntry:
            return
        gb.remove_submission(job.module.folder, job.student)


def _failure_reason(result: dict, log_text: str) -> str:
    text = (log_text or "") + "\n" + (result.get("error") or "")
    if re.search(r"DeadKernelError|Kernel died|kernel.*(died|dead)", text, re.IGNORECASE):
        return ("the kernel died while running the notebook (the code crashed Python, called "
                "exit, or ran out of memory)")
    if "CellTimeoutError" in text or "TimeoutError" in text:
        return "a cell ran too long and the kernel did not recover"
    detail = nbg.failure_text(result, limit=3).replace("\n", " | ")
    return f"autograde failed: {detail[:300]}"


def _read_scores(groot: GradingRoot, job: Job) -> tuple[float, float, list[str]]:
    with nbg.gradebook(groot.db_url) as gb:
        sub = gb.find_submission(job.module.folder, job.student)
        nb_name = Path(job.module.notebook_name).stem
        subnb = gb.find_submission_notebook(nb_name, job.module.folder, job.student)
        failed = [
            f"{g.name} ({_num(g.score)}/{_num(g.max_score)})"
            for g in sorted(subnb.grades, key=lambda g: g.name)
            if g.max_score and g.score < g.max_score
        ]
        return float(sub.score), float(sub.max_score), failed


STOPPING = {"kernel_died", "notebook_timeout"}  # the run stopped early: status "error"


def _limit_events(report: Path) -> list[dict]:
    """What the limits did (written by coursekit.limits.LimitedExecute)."""
    try:
        events = json.loads(report.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return []
    return [e for e in events if isinstance(e, dict) and "reason" in e]


def grade_one(groot: GradingRoot, job: Job, *, feedback: bool = True) -> Result:
    """Grade one submission; never raises for a bad submission (the reason goes in the Result)."""
    assignment = job.module.folder
    total = max_points(job.module.source_notebook)
    _clear_job(groot, job)
    if not STUDENT_ID_RE.match(job.student):
        return Result(job.student, assignment, 0, total, "invalid",
                      f"student id {job.student!r} must be letters, digits, '.', '_' or '-'")
    bad = precheck(job.path)
    if bad:
        _forget_submission(groot, job)
        return Result(job.student, assignment, 0, total, bad[0], bad[1])
    dest = groot.submitted(job)
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(job.path, dest)
    cfg = groot.config
    report = groot.report(job)
    report.parent.mkdir(parents=True, exist_ok=True)
    cfg.LimitedExecute.report_file = str(report)
    # precheck made sure the submission is a notebook; both are read once, here
    submitted_nb = json.loads(dest.read_text(encoding="utf-8"))
    source_nb = json.loads(job.module.source_notebook.read_text(encoding="utf-8"))
    flags = review(submitted_nb, source_nb, job.module.name)
    result = nbg.run("autograde", cfg, assignment, job.student)
    flags += kernel_flags(report)
    if not result.get("success") or not groot.autograded(job).is_file():
        reason = _failure_reason(result, result.get("log", ""))
        _forget_submission(groot, job)
        return Result(job.student, assignment, 0, total, "error", reason,
                      flagged="; ".join(flags))
    score, max_score, failed = _read_scores(groot, job)
    reason = ("all tests passed" if not failed else "failed: " + ", ".join(failed))
    status = "graded"
    for event in _limit_events(report):
        reason += "; " + event["reason"]
        if event["kind"] in STOPPING:
            status = "error"
    out = Result(job.student, assignment, score, max_score, status, reason, failed=failed,
                 flagged="; ".join(flags))
    if feedback:
        fb = nbg.run("generate_feedback", cfg, assignment, job.student)
        html_path = groot.feedback(job)
        if not fb.get("success") or not html_path.is_file():
            detail = nbg.failure_text(fb, 2).replace("\n", " | ")
            out.reason += f"; feedback not generated: {detail}"
        else:
            # a line the student wrote (say `with no_grad():` in a solution) is not a leak
            own = {line.strip() for cell in submitted_nb.get("cells", [])
                   for line in cell_source(cell).splitlines()}
            hidden = [line for line in secrets_of(source_nb).hidden if line.strip() not in own]
            leaked = leaked_lines(html_path.read_text(encoding="utf-8"), hidden)
            if leaked:
                html_path.unlink()
                out.reason += f"; feedback withheld: it would show hidden test code {leaked[0]!r}"
            else:
                out.feedback = str(html_path)
    return out


def collect_jobs(submissions: Path, modules: list[Module],
                 log: Callable[[str], None] = print,
                 course_folders: set[str] | None = None) -> list[Job]:
    """A job per (student folder, module): the expected notebook path, present or not."""
    if not submissions.is_dir():
        raise CourseError(f"--submissions {submissions}: not a folder "
                          "(expected DIR/<student_id>/<NN_name>/<name>.ipynb)")
    students = sorted(p.name for p in submissions.iterdir()
                      if p.is_dir() and not p.name.startswith("."))
    if not students:
        raise CourseError(f"--submissions {submissions}: no student folders")
    known = course_folders or {m.folder for m in modules}
    jobs = []
    for student in students:
        for extra in sorted((submissions / student).iterdir()):
            if extra.is_dir() and extra.name not in known:
                log(f"grade: ignoring {student}/{extra.name}/ (not an assignment of this course)")
        for module in modules:
            jobs.append(Job(student, module, submissions / student / module.folder
                            / module.notebook_name))
    return jobs


def write_csv(results: list[Result], path: Path) -> None:
    """Write ``grades.csv``: student, assignment, score, max_score, status, reason."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=CSV_FIELDS, lineterminator="\n")
        writer.writeheader()
        for r in sorted(results, key=lambda r: (r.student, r.assignment)):
            writer.writerow(r.row())


def print_table(results: list[Result], log: Callable[[str], None] = print) -> None:
    """Print the grades as a plain-text table."""
    rows = [["student", "assignment", "score", "status", "reason"]]
    for r in sorted(results, key=lambda r: (r.student, r.assignment)):
        reason = r.reason if len(r.reason) <= 70 else r.reason[:67] + "..."
        rows.append([r.student, r.assignment, f"{_num(r.score)}/{_num(r.max_score)}",
                     r.status, reason])
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for i, row in enumerate(rows):
        log("  ".join(cell.ljust(w) for cell, w in zip(row[:4], widths, strict=True))
            + "  " + row[4])
        if i == 0:
            log("  ".join("-" * w for w in widths) + "  " + "-" * 6)


def default_workers() -> int:
    """The number of cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def print_summary(results: list[Result], seconds: float,
                  log: Callable[[str], None] = print) -> None:
    """Graded, failed with reason, flagged for review."""
    graded = [r for r in results if r.status == "graded"]
    failed = [r for r in results if r.status != "graded"]
    flagged = [r for r in results if r.flagged]
    log(f"grade: {len(results)} submissions in {_duration(seconds)}: {len(graded)} graded, "
        f"{len(failed)} failed or incomplete, {len(flagged)} flagged for review")
    for r in sorted(failed, key=lambda r: (r.student, r.assignment)):
        log(f"  failed   {r.student} {r.assignment} ({r.status}, "
            f"{_num(r.score)}/{_num(r.max_score)}): {r.reason}")
    for r in sorted(flagged, key=lambda r: (r.student, r.assignment)):
        log(f"  flagged  {r.student} {r.assignment}: {r.flagged}")


def run_jobs(groot: GradingRoot, modules: list[Module], jobs: list[Job], workers: int, *,
             feedback: bool = True, log: Callable[[str], None] = print,
             on_result: Callable[[Result, int, int], None] | None = None) -> list[Result]:
    """Fill the grading root ``groot`` (made by :func:`open_root`) and grade ``jobs``.

    ``workers`` worker processes share the jobs (0: one after another in this process); they
    are started first, so they load nbgrader while the root is being filled.
    """
    with ExitStack() as stack:
        pool = None
        if workers:
            from coursekit.workers import Pool

            pool = stack.enter_context(Pool(groot, modules, workers, log, feedback=feedback))
            pool.start(len(jobs))
        fill_root(groot, modules, log)
        if pool is not None:
            log(f"grade: {len(jobs)} submissions, {workers} worker process(es)")
            return pool.run(jobs, on_result)
        results: list[Result] = []
        for job in jobs:
            results.append(grade_one(groot, job, feedback=feedback))
            if on_result:
                on_result(results[-1], len(results), len(jobs))
        return results


def grade(course: Course, submissions: Path, out: Path | None = None, db_url: str | None = None,
          modules: list[str] | None = None, log: Callable[[str], None] = print, *,
          workers: int | None = None, feedback: bool = True,
          overrides: dict[str, dict[str, object]] | None = None) -> list[Result]:
    """Grade every submission under ``submissions``; write grades.csv in the grading root.

    ``workers`` worker processes (default: one per core; 0: in this process) share the
    submissions; every result is merged into the course gradebook ``db_url``.
    ``feedback=False`` skips the feedback HTML.
    ``overrides`` are nbgrader config values on top of grader_config.py, e.g.
    ``{"LimitedExecute": {"notebook_timeout": 60}}``.
    """
    chosen = course.select(modules)
    if not chosen:
        raise CourseError(f"{course.root}/modules: no module files found")
    n = default_workers() if workers is None else workers
    if n < 0:
        raise CourseError(f"--workers {n}: must be 0 (in this process) or more")
    root = out or course.root / "grading"
    jobs = collect_jobs(submissions.resolve(), chosen, log,
                        course_folders={m.folder for m in course.modules()})
    with kernel_environment(course):
        groot = open_root(course, root, db_url, overrides)
        started = time.monotonic()

        def progress(result: Result, done: int, total: int) -> None:
            elapsed = time.monotonic() - started
            left = elapsed / done * (total - done)
            log(f"grade [{done}/{total}] {result.student} {result.assignment}: "
                f"{_num(result.score)}/{_num(result.max_score)} {result.status}"
                f"{' FLAGGED' if result.flagged else ''}  "
                f"(elapsed {_duration(elapsed)}, about {_duration(left)} left)")

        results = run_jobs(groot, chosen, jobs, n, feedback=feedback, log=log,
                           on_result=progress)
        csv_path = groot.root / "grades.csv"
        write_csv(results, csv_path)
        print_summary(results, time.monotonic() - started, log)
        log(f"grade: wrote {csv_path}; feedback in {groot.root / 'feedback'}")
        return results
