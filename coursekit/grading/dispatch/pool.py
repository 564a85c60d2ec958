"""Parallel grading on this machine: N grading processes, one course gradebook.

The parent (:class:`Pool`) keeps one queue of submissions and a
:class:`coursekit.grading.dispatch.station.Station` of N grading processes started from the grading
bundle (:mod:`coursekit.grading.dispatch.bundle`), the same as on every Dask worker
(:mod:`coursekit.grading.dispatch.cluster`). One thread per process sends it a submission as bytes
(:func:`coursekit.grading.dispatch.jobs.make_request`) and takes the answer; the parent alone writes
the answers into the grading root and the course gradebook (any SQLAlchemy URL), so there
is a single writer.

Processes are started before the grading root is ready (they import nbgrader meanwhile),
and each forks its kernels from its own fork server
(:mod:`coursekit.grading.execution.kernel.forkserver`).

A process that dies (killed, out of memory, a crash in nbgrader) loses nothing: its
submission is graded again once in a new process; if it kills that one too it is recorded
as an error with the reason. A submission that runs past ``job_timeout`` seconds has its
process stopped and is recorded the same way (the limits inside the notebook should have
stopped it long before).
"""

from __future__ import annotations

import json
import queue
import threading
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from coursekit.course import CourseError
from coursekit.grading.dispatch.jobs import make_request
from coursekit.grading.records.results import Job, Result
from coursekit.grading.records.root import GradingRoot
from coursekit.grading.dispatch.station import Station


def worker_options(groot: GradingRoot) -> list[str]:
    """The command-line options of a grading process for ``groot``."""
    return ["--overrides", json.dumps(groot.overrides),
            *([] if groot.sandbox else ["--no-sandbox"])]


def default_job_timeout(groot: GradingRoot) -> float:
    """Seconds a grading process may spend on one submission: the notebook's limit and two
    minutes for the rest (restoring cells, nbgrader's bookkeeping)."""
    notebook = groot.config.LimitedExecute.get("notebook_timeout", 600) or 600
    return float(notebook) + 120


class Pool:
    """Grade jobs with N grading processes; store each answer in the grading root."""

    def __init__(self, groot: GradingRoot, bundle: Path, workers: int,
                 job_timeout: float | None = None, env: dict[str, str] | None = None) -> None:
        if workers < 1:
            raise CourseError(f"--workers {workers}: must be at least 1")
        self.groot = groot
        self.workers = workers
        self.station = Station(bundle, groot.root / "workers",
                               worker_options(groot),
                               job_timeout or default_job_timeout(groot), env)
        self.queue: deque[Job] = deque()
        self.lock = threading.Lock()
        self.done: queue.Queue[tuple[Job, dict[str, Any]]] = queue.Queue()
        self.running: dict[int, Job] = {}
        self.closing = False
        self._started = False

    def __enter__(self) -> Pool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def pids(self) -> list[int]:
        """The grading processes' ids, busy ones first."""
        return self.station.pids()

    def start(self, jobs: int) -> None:
        """Start the grading processes for ``jobs`` submissions (before the grading root is
        ready, so that they load nbgrader meanwhile); ``run`` starts them if not done here."""
        if not self._started:
            self._started = True
            self.station.start(min(self.workers, jobs) or 1)

    def close(self) -> None:
        """Stop every grading process (the jobs not started are dropped)."""
        self.closing = True
        with self.lock:
            self.queue.clear()
        self.station.close()

    def _take(self) -> Job | None:
        with self.lock:
            return self.queue.popleft() if self.queue and not self.closing else None

    def _feed(self, number: int) -> None:
        while (job := self._take()) is not None:
            request, answer = make_request(job)
            if request is not None:
                self.running[number] = job
                try:
                    answer = self.station.grade(request)
                finally:
                    self.running.pop(number, None)
            if self.closing:
                return
            self.done.put((job, answer))

    def run(self, jobs: list[Job], store: Callable[[Job, dict[str, Any]], Result],
            on_result: Callable[[Result, int, int], None] | None = None) -> list[Result]:
        """Grade every job; ``store`` writes each answer (in this thread, see
        :func:`coursekit.grading.dispatch.jobs.answer_store`); ``on_result(result, done, total)`` as
        each one is stored."""
        self.queue.extend(jobs)
        self.start(len(jobs))
        threads = [threading.Thread(target=self._feed, args=(i + 1,), daemon=True)
                   for i in range(min(self.workers, len(jobs)))]
        for t in threads:
            t.start()
        results: list[Result] = []
        while len(results) < len(jobs):
            try:
                job, answer = self.done.get(timeout=1.0)
            except queue.Empty:
                if not any(t.is_alive() for t in threads):
                    raise CourseError("grading workers stopped before every submission was "
                                      f"graded ({len(results)}/{len(jobs)})") from None
                continue
            result = store(job, answer)
            results.append(result)
            if on_result:
                on_result(result, len(results), len(jobs))
        for t in threads:
            t.join(timeout=60)
        return results
