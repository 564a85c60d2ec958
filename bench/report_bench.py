"""How long ``course report`` takes against reading the gradebook alone, for a class of
2,000 students x 8 modules (12 test cells each: 192,000 cell scores).

The class is synthetic (``tests/13_report/synthetic.py``: a gradebook made by bulk inserts,
``grades.csv``, no grading). Two sides, in turns, repeated:

* **read**: open the gradebook read-only and read everything the report needs from it
  (``coursekit.report.gradebook.read``: assignments, cells, submissions, every cell's score);
* **report**: all of ``course report`` (``write_report``): the same read, ``grades.csv``,
  the numbers, five Matplotlib figures, ``report.html`` and its CSV files.

Each run is timed in CPU time of this process (``time.process_time``; other programs on a
shared machine disturb it far less than wall time) and in wall time; the fastest run of each
side is compared. SQLite runs in this process, so its ratio is judged in CPU time; a
PostgreSQL server (``--postgresql``: started and stopped here, as the tests do, with
``tests/11_grading/pgserver.py``) works in its own process, so that ratio is judged in wall
time. The goal is a report at most 3x the read. Modules are imported before the first
timed run (a fresh ``course report`` process also pays about a second for importing
Matplotlib and SQLAlchemy; the script prints that too).

``--notebooks KB`` adds an autograded notebook of about KB kilobytes for every submission
that failed a test (failure messages are read from them): reading those is proportional to
their number and size, and is reported per notebook for information (not judged).

Run: .venv/bin/python bench/report_bench.py [--students N] [--modules N] [--runs N]
     [--postgresql] [--notebooks KB]
Always exits 0; prints the numbers and PASS or FAIL against the goal.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests" / "13_report"))
sys.path.insert(0, str(REPO / "tests" / "11_grading"))

import synthetic  # noqa: E402

from coursekit.course import Course  # noqa: E402
from coursekit.report import gradebook, source, write_report  # noqa: E402

GOAL = 3.0


def timed(fn: Callable[[], object]) -> tuple[float, float]:
    """(CPU seconds of this process, wall seconds) of one call."""
    cpu, wall = time.process_time(), time.perf_counter()
    fn()
    return time.process_time() - cpu, time.perf_counter() - wall


def measure(course: Course, root: Path, out: Path, runs: int) -> dict[str, list[tuple]]:
    src = source.locate(course, root)

    def read() -> None:
        engine = source.engine(src)
        try:
            gradebook.read(engine, src.course_id, src.shown_url)
        finally:
            engine.dispose()

    def report() -> None:
        write_report(course, out=out, grading=root, log=lambda s: None)

    read()
    report()  # imports, font cache: not timed
    times: dict[str, list[tuple]] = {"read": [], "report": []}
    for k in range(runs):
        order = [("read", read), ("report", report)]
        for name, fn in (order if k % 2 == 0 else order[::-1]):
            times[name].append(timed(fn))
    return times


def verdict(times: dict[str, list[tuple]], judge: int, label: str) -> list[str]:
    kinds = ("CPU", "wall")
    lines = []
    for i, kind in enumerate(kinds):
        best = {side: min(t[i] for t in times[side]) for side in times}
        median = {side: statistics.median(t[i] for t in times[side]) for side in times}
        ratio = best["report"] / best["read"]
        line = (f"  {kind:4} read {best['read']:.2f} s, report {best['report']:.2f} s "
                f"(medians {median['read']:.2f} s, {median['report']:.2f} s): "
                f"report/read = {ratio:.2f}")
        if i == judge:
            line += f" (goal <= {GOAL}): {'PASS' if ratio <= GOAL else 'FAIL'}"
        lines.append(line)
    return [label] + lines


def cold(course: Course, root: Path, out: Path) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "coursekit", "--root", str(course.root), "report",
                    "--grading", str(root), "--out", str(out)], check=True,
                   capture_output=True, cwd=REPO)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=2000)
    parser.add_argument("--modules", type=int, default=8)
    parser.add_argument("--tests", type=int, default=12, help="test cells per module")
    parser.add_argument("--runs", type=int, default=5, help="timed runs per side")
    parser.add_argument("--postgresql", action="store_true",
                        help="also on a PostgreSQL server started here")
    parser.add_argument("--notebooks", type=int, default=0, metavar="KB",
                        help="also with autograded notebooks of about KB kB each")
    args = parser.parse_args()
    course = Course(REPO)
    work = Path(tempfile.mkdtemp(prefix="report-bench-"))
    spec = synthetic.Spec(args.students, synthetic.standard_modules(args.modules, args.tests),
                          notebooks=False, feedback=False)
    cells = args.students * args.modules * args.tests
    print(f"report bench: {args.students} students x {args.modules} modules x {args.tests} "
          f"test cells ({cells:,} cell scores), {args.runs} runs per side")
    server = None
    try:
        start = time.perf_counter()
        root = work / "sqlite"
        synthetic.make_class(root, spec)
        print(f"  class made in {time.perf_counter() - start:.1f} s (SQLite)")
        plain = measure(course, root, work / "out", args.runs)
        print("\n".join(verdict(plain, 0, "SQLite:")))
        print(f"  for information: `course report` in a new process, imports included: "
              f"{cold(course, root, work / 'cold'):.2f} s")
        if args.postgresql:
            import pgserver

            why = pgserver.unavailable()
            if why:
                print(f"PostgreSQL: SKIPPED ({why})")
            else:
                server = pgserver.start()
                root = work / "postgresql"
                synthetic.make_class(root, spec, server.create_database("gradebook"))
                print("\n".join(verdict(measure(course, root, work / "out-pg", args.runs), 1,
                                        "PostgreSQL (same machine):")))
        if args.notebooks:
            spec.notebooks, spec.pad_bytes = True, args.notebooks * 1000
            root = work / "notebooks"
            synthetic.make_class(root, spec)
            count = sum(1 for _ in (root / "autograded").glob("*/*/*.ipynb"))
            size = sum(p.stat().st_size for p in (root / "autograded").glob("*/*/*.ipynb"))
            times = measure(course, root, work / "out-nb", max(1, args.runs // 2))
            base = min(t[0] for t in times["read"])
            rep = min(t[0] for t in times["report"])
            without = min(t[0] for t in plain["report"])
            print(f"With {count} autograded notebooks ({size / 1e6:.0f} MB) read for their "
                  f"failure messages (SQLite): read {base:.2f} s, report {rep:.2f} s CPU "
                  f"(report/read = {rep / base:.2f}; not judged): the notebooks cost about "
                  f"{1e3 * max(0.0, rep - without) / max(1, count):.2f} ms each")
    finally:
        if server is not None:
            pgserver.stop(server)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
