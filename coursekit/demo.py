"""``course demo``: build, release and grade the example class."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from coursekit.authoring.build import build
from coursekit.course import Course
from coursekit.authoring.examples import make_examples
from coursekit.grading.grade import grade
from coursekit.grading.records.results import print_table
from coursekit.authoring.release import release


def demo(course: Course, out: Path | None = None, log: Callable[[str], None] = print) -> int:
    """Run the whole instructor flow on ``examples/submissions``; return an exit code."""
    build(course, log=log)
    release(course, log=log)
    submissions = course.root / "examples" / "submissions"
    if not submissions.is_dir():
        log("demo: examples/submissions/ is missing; generating it")
        make_examples(course, log=log)
    root = out or course.root / "grading" / "demo"
    if out is None and root.exists():
        # the demo grades the example class from scratch: a gradebook left by an earlier
        # demo may hold older versions of the assignments, which nbgrader will not replace
        log(f"demo: starting from a fresh grading root (removing {root})")
        shutil.rmtree(root)
    results = grade(course, submissions, out=root, log=log)
    log("")
    print_table(results, log)
    log("")
    log(f"demo: grades in {root / 'grades.csv'}")
    log(f"demo: feedback HTML in {root / 'feedback'}/<student>/<NN_name>/<name>.html")
    where = "" if out is None else f" --grading {root}"
    log(f"demo: the class report: `course report{where}` writes {root / 'report.html'}")
    return 0
