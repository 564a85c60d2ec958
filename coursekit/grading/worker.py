"""A grading worker process: ``python -m coursekit.grading.worker`` (started by the pool).

It reads one job a line on stdin, grades it with :func:`coursekit.grading.submission.grade_one`
into its own SQLite gradebook and answers one JSON line on stdout with the result and the
submission's grades (:func:`coursekit.grading.gradebook.submission_detail`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path

from coursekit.course import Course, CourseError
from coursekit.grading import kernels
from coursekit.grading.gradebook import submission_detail
from coursekit.grading.results import Job
from coursekit.grading.root import GradingRoot, kernel_environment
from coursekit.grading.submission import grade_one


def worker_main(argv: list[str] | None = None) -> int:
    """A worker process: grade the jobs read from stdin, one JSON answer a line on stdout."""
    parser = argparse.ArgumentParser(prog="python -m coursekit.grading.worker")
    parser.add_argument("--course", required=True)
    parser.add_argument("--root", required=True)
    parser.add_argument("--db-url", required=True)
    parser.add_argument("--overrides", default="{}")
    parser.add_argument("--no-feedback", action="store_true")
    parser.add_argument("--no-sandbox", action="store_true")
    args = parser.parse_args(argv)
    answers = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)  # anything else printed goes to the worker's log, not the answers
    sys.stdout = sys.stderr
    course = Course(args.course)
    groot = GradingRoot(course, Path(args.root), args.db_url, json.loads(args.overrides),
                        sandbox=not args.no_sandbox)
    # load what grading uses now: the parent may still be preparing the grading root
    import nbgrader.api  # noqa: F401
    import nbgrader.converters  # noqa: F401

    import coursekit.grading.limits  # noqa: F401

    modules = {m.folder: m for m in course.modules()}
    with kernel_environment(course):
        try:
            for line in sys.stdin:
                if not line.strip():
                    continue
                req = json.loads(line)
                job = Job(req["student"], modules[req["module"]], Path(req["path"]))
                started = time.monotonic()
                try:
                    result = grade_one(groot, job, feedback=not args.no_feedback)
                except CourseError as exc:  # the sandbox or the fork server failed
                    answers.write(json.dumps({"failed": str(exc)}) + "\n")
                    answers.flush()
                    continue
                detail = submission_detail(groot.db_url, job.module.folder, job.student)
                answers.write(json.dumps({"result": asdict(result), "detail": detail,
                                          "seconds": time.monotonic() - started}) + "\n")
                answers.flush()
        finally:
            kernels.stop()
    return 0


if __name__ == "__main__":
    sys.exit(worker_main())
