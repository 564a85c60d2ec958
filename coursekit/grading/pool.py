"""Parallel grading: worker processes, each with its own gradebook, merged into the course's.

The parent (:class:`Pool`) keeps one queue of submissions and N worker processes
(``python -m coursekit.grading.worker``). A worker reads one job a line on stdin, grades
it with :func:`coursekit.grading.submission.grade_one` into its own SQLite gradebook (a copy
of a template that holds only the assignments), and answers one JSON line with the result and the
submission's grades. Only the parent writes the course gradebook (any SQLAlchemy URL), so
there is a single writer. All workers share the grading root's folders: every submission
has its own ``submitted/``, ``autograded/`` and ``feedback/`` folders.

Workers are started before the grading root is ready (they import nbgrader meanwhile), and
each forks its kernels from its own fork server (:mod:`coursekit.grading.kernel.forkserver`).

A worker that dies (killed, out of memory, a crash in nbgrader) loses nothing: its current
submission goes back to the queue once; if it kills a worker a second time it is recorded
as an error with the reason. A submission that runs past ``job_timeout`` seconds has its
worker stopped and is recorded the same way (the limits inside the notebook should have
stopped it long before).
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from coursekit.course import CourseError, Module
from coursekit.grading import deadlines
from coursekit.grading.gradebook import make_template, merge_submission
from coursekit.grading.results import Job, Result, max_points
from coursekit.grading.root import BLAS_THREADS, GradingRoot

MAX_ATTEMPTS = 2


@dataclass
class _Task:
    job: Job
    attempts: int = 0


class _Worker:
    """One worker process and the thread that feeds it."""

    def __init__(self, pool: Pool, number: int) -> None:
        self.pool = pool
        self.number = number
        self.starts = 0
        self.proc: subprocess.Popen[str] | None = None
        self.db = Path()
        self.db_ready = False

    def start(self) -> None:
        """Start the worker process; its gradebook is copied in before its first job."""
        self.starts += 1
        wdir = self.pool.groot.root / "workers"
        wdir.mkdir(parents=True, exist_ok=True)
        self.db = wdir / f"w{self.number}-{self.starts}.db"
        self.db_ready = False
        env = dict(os.environ)
        for var in BLAS_THREADS:
            env[var] = "1"
        cmd = [sys.executable, "-m", "coursekit.grading.worker",
               "--course", str(self.pool.groot.course.root),
               "--root", str(self.pool.groot.root),
               "--db-url", "sqlite:///" + str(self.db),
               "--overrides", json.dumps(self.pool.groot.overrides),
               *([] if self.pool.feedback else ["--no-feedback"]),
               *([] if self.pool.groot.sandbox else ["--no-sandbox"])]
        log = (wdir / f"w{self.number}.log").open("a", encoding="utf-8")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=log, text=True, env=env, bufsize=1)
        log.close()
        self.pool.pids.append(self.proc.pid)

    def stop(self) -> None:
        """Close the worker's input (it ends after its current job); kill it if it hangs."""
        if self.proc is None:
            return
        try:
            if self.proc.stdin:
                self.proc.stdin.close()
            self.proc.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def run(self) -> None:
        while True:
            task = self.pool.take()
            if task is None:
                break
            if self.proc is None or self.proc.poll() is not None:
                self.start()
            assert self.proc is not None and self.proc.stdin and self.proc.stdout
            if not self.db_ready:
                shutil.copyfile(self.pool.template(), self.db)
                self.db_ready = True
            self.pool.running[self.number] = task.job
            timed_out = threading.Event()

            def stop(proc: subprocess.Popen[str] = self.proc,
                     flag: threading.Event = timed_out) -> None:
                flag.set()
                proc.kill()

            timer = threading.Timer(self.pool.job_timeout, stop)
            timer.start()
            line = ""
            try:
                self.proc.stdin.write(json.dumps({"student": task.job.student,
                                                  "module": task.job.module.folder,
                                                  "path": str(task.job.path)}) + "\n")
                self.proc.stdin.flush()
                line = self.proc.stdout.readline()
            except (BrokenPipeError, OSError, ValueError):  # ValueError: closed by close()
                line = ""
            finally:
                timer.cancel()
                self.pool.running.pop(self.number, None)
            if line:
                self.pool.done.put((task.job, json.loads(line)))
                continue
            if self.pool.closing or self.proc is None:
                break
            code = self.proc.wait()
            self.proc = None
            task.attempts += 1
            if timed_out.is_set():
                reason = (f"grading took longer than {self.pool.job_timeout:.0f} s; "
                          "the grading worker was stopped")
                self.pool.done.put((task.job, {"failed": reason}))
            elif task.attempts < MAX_ATTEMPTS:
                self.pool.log(f"grade: worker {self.number} died (exit code {code}) while "
                              f"grading {task.job.student} {task.job.module.folder}; "
                              "grading it again")
                self.pool.put_back(task)
            else:
                reason = (f"the grading worker died {task.attempts} times while grading this "
                          f"submission (last exit code {code})")
                self.pool.done.put((task.job, {"failed": reason}))
        if not self.pool.closing:  # else close() stops the process
            self.stop()


class Pool:
    """Grade jobs with N worker processes; merge each result into the course gradebook."""

    def __init__(self, groot: GradingRoot, modules: list[Module], workers: int,
                 log: Callable[[str], None] = print, job_timeout: float | None = None,
                 feedback: bool = True) -> None:
        if workers < 1:
            raise CourseError(f"--workers {workers}: must be at least 1")
        self.groot = groot
        self.feedback = feedback
        self.workers = workers
        self.log = log
        cfg = groot.config
        notebook = cfg.LimitedExecute.get("notebook_timeout", 600) or 600
        self.job_timeout = job_timeout or float(notebook) + 120
        self.modules = modules
        self._template: Path | None = None
        self._template_lock = threading.Lock()
        self.queue: deque[_Task] = deque()
        self.lock = threading.Lock()
        self.done: queue.Queue[tuple[Job, dict[str, Any]]] = queue.Queue()
        self.running: dict[int, Job] = {}
        self.pids: list[int] = []
        self._workers: list[_Worker] = []
        self.closing = False
        self.course_id = groot.course_id
        self.late = deadlines.policy(groot.course)

    def __enter__(self) -> Pool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self, jobs: int) -> None:
        """Start the worker processes for ``jobs`` submissions (before the grading root is
        ready, so that they load nbgrader meanwhile); ``run`` starts them if not done here."""
        if not self._workers:
            self._workers = [_Worker(self, i + 1) for i in range(min(self.workers, jobs) or 1)]
            for w in self._workers:
                w.start()

    def close(self) -> None:
        """Stop every worker process (the jobs not started are dropped)."""
        self.closing = True
        with self.lock:
            self.queue.clear()
        for w in self._workers:
            w.stop()

    def template(self) -> Path:
        """The gradebook every worker starts from, made from the course gradebook on first use
        (the grading root must be ready by then)."""
        with self._template_lock:
            if self._template is None:
                self._template = make_template(self.groot, self.modules,
                                               self.groot.root / "workers" / "template.db")
            return self._template

    def take(self) -> _Task | None:
        with self.lock:
            return self.queue.popleft() if self.queue else None

    def put_back(self, task: _Task) -> None:
        with self.lock:
            self.queue.appendleft(task)

    def run(self, jobs: list[Job],
            on_result: Callable[[Result, int, int], None] | None = None) -> list[Result]:
        """Grade every job; call ``on_result(result, done, total)`` as each one is merged."""
        self.queue.extend(_Task(j) for j in jobs)
        self.start(len(jobs))
        threads = [threading.Thread(target=w.run, daemon=True) for w in self._workers]
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
            result = self._merge(job, answer)
            results.append(result)
            if on_result:
                on_result(result, len(results), len(jobs))
        for t in threads:
            t.join(timeout=60)
        return results

    def _merge(self, job: Job, answer: dict[str, Any]) -> Result:
        assignment = job.module.folder
        if "failed" in answer:
            merge_submission(self.groot.db_url, assignment, job.student, None, self.course_id)
            return Result(job.student, assignment, 0, max_points(job.module.source_notebook),
                          "error", answer["failed"], sandboxed=self.groot.sandbox)
        result = Result(**answer["result"])
        merge_submission(self.groot.db_url, assignment, job.student, answer["detail"],
                         self.course_id, self.late)
        return result
