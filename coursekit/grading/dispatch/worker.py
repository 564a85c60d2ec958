"""A grading process: ``python -m coursekit.grading.dispatch.worker --bundle DIR --scratch DIR``.

Started by a :class:`coursekit.grading.dispatch.station.Station` (on the instructor's machine
or on a Dask worker) with the bundle folder first on ``PYTHONPATH``, so that the course package it
runs is the bundle's. Its first line on stdout says hello: the versions that must match the
instructor's (:func:`coursekit.grading.dispatch.station.versions`), where its course package comes
from, and, if it cannot grade here, why (``refused``). Then it reads one request a line on
stdin and answers one line on stdout (:class:`coursekit.grading.dispatch.jobs.Grader`; bytes as
base64). It ends when its input closes, or at once when the process that started it dies.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from pathlib import Path

from coursekit.grading.execution import kernelserver
from coursekit.grading.dispatch.station import decode, encode, versions


def _watch_parent() -> None:
    """End this process (and with it its sandbox) as soon as its parent is gone: a Dask
    worker killed mid-run must not leave grading processes behind."""
    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(0.5)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, daemon=True, name="watch-parent").start()


def hello(bundle: Path, probe_sandbox: bool) -> dict:
    """What this process says first: versions, course package, why it cannot grade."""
    package = Path(__file__).resolve().parents[2]  # the coursekit folder this runs from
    said = {"versions": versions(), "package": str(package), "pid": os.getpid(),
            "refused": ""}
    if not package.is_relative_to(bundle):
        said["refused"] = (f"it imports the course package from {package}, not from the "
                           f"grading bundle {bundle}")
        return said
    if probe_sandbox:
        from coursekit.grading.execution import sandbox as sb
        from coursekit.grading.dispatch.bundle import BundledCourse

        course = BundledCourse(bundle)
        try:
            sb.probe(course, course.modules()[-1])
        except sb.SandboxUnavailable as exc:
            said["refused"] = f"the grading sandbox cannot run there: {exc}"
    return said


def worker_main(argv: list[str] | None = None) -> int:
    """A grading process: hello, then one answer a line for each request read on stdin."""
    parser = argparse.ArgumentParser(prog="python -m coursekit.grading.dispatch.worker",
                                     description="Grade submissions sent on stdin, one JSON "
                                     "request a line, from an unpacked grading bundle.")
    parser.add_argument("--bundle", required=True, help="the unpacked grading bundle")
    parser.add_argument("--scratch", required=True, help="this process's private folder")
    parser.add_argument("--overrides", default="{}", help="nbgrader config values (JSON)")
    parser.add_argument("--no-sandbox", action="store_true", help="kernels without sandbox")
    parser.add_argument("--probe-sandbox", action="store_true",
                        help="check first that the sandbox runs here (else refuse)")
    args = parser.parse_args(argv)
    answers = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)  # anything else printed goes to the process's log, not the answers
    sys.stdout = sys.stderr
    _watch_parent()
    bundle = Path(args.bundle).resolve()
    said = hello(bundle, args.probe_sandbox and not args.no_sandbox)
    answers.write(json.dumps({"hello": said}) + "\n")
    answers.flush()
    if said["refused"]:
        return 1
    # load what grading uses now: the parent may still be preparing the grading root
    import nbgrader.api  # noqa: F401
    import nbgrader.converters  # noqa: F401

    import coursekit.grading.execution.limits  # noqa: F401
    from coursekit.grading.dispatch.jobs import Grader
    from coursekit.grading.records.root import kernel_environment

    grader = Grader(bundle, Path(args.scratch), json.loads(args.overrides),
                    sandbox=not args.no_sandbox)
    with kernel_environment(grader.course):
        try:
            for line in sys.stdin:
                if not line.strip():
                    continue
                answer = grader.grade(decode(json.loads(line)))
                answers.write(json.dumps(encode(answer)) + "\n")
                answers.flush()
        finally:
            kernelserver.stop()
    return 0


if __name__ == "__main__":
    sys.exit(worker_main())
