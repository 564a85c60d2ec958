"""``course grade``: autograde submissions with nbgrader, feedback HTML and ``grades.csv``."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

from coursekit.course import Course, CourseError, Module
from coursekit.grading import kernels
from coursekit.grading import sandbox as sb
from coursekit.grading.results import (
    Job,
    Result,
    _duration,
    _num,
    default_workers,
    print_summary,
    write_csv,
)
from coursekit.grading.root import GradingRoot, fill_root, kernel_environment, open_root
from coursekit.grading.submission import grade_one


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


def run_jobs(groot: GradingRoot, modules: list[Module], jobs: list[Job], workers: int, *,
             feedback: bool = True, log: Callable[[str], None] = print,
             on_result: Callable[[Result, int, int], None] | None = None) -> list[Result]:
    """Fill the grading root ``groot`` (made by :func:`open_root`) and grade ``jobs``.

    ``workers`` worker processes share the jobs (0: one after another in this process); they
    are started first, so they load nbgrader while the root is being filled. Jobs go module
    by module, so that a worker keeps the sandbox of one module for many submissions.
    """
    jobs = sorted(jobs, key=lambda j: (j.module.folder, j.student))
    with ExitStack() as stack:
        stack.callback(kernels.stop)
        pool = None
        if workers:
            from coursekit.grading.pool import Pool

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
          overrides: dict[str, dict[str, object]] | None = None,
          sandbox: bool = True) -> list[Result]:
    """Grade every submission under ``submissions``; write grades.csv in the grading root.

    ``workers`` worker processes (default: one per core; 0: in this process) share the
    submissions; every result is merged into the course gradebook ``db_url``.
    ``feedback=False`` skips the feedback HTML.
    ``overrides`` are nbgrader config values on top of grader_config.py, e.g.
    ``{"LimitedExecute": {"notebook_timeout": 60}}``.
    ``sandbox=False`` grades without the sandbox (:mod:`coursekit.grading.sandbox`): only for
    trusted notebooks; with it on, grading stops before it starts if the sandbox cannot run.
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
    if sandbox:
        sb.probe(course, chosen[-1])  # SandboxUnavailable: why, and how to get it
    with kernel_environment(course):
        groot = open_root(course, root, db_url, overrides, sandbox)
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
        if not sandbox:
            log("grade: WARNING: graded WITHOUT the sandbox (--no-sandbox): the submissions' "
                "code could read and change the grader's files; grades.csv says sandboxed=no")
        log(f"grade: wrote {csv_path}; feedback in {groot.root / 'feedback'}")
        return results
