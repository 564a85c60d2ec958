"""Grading the accepted attempts: a bounded queue, which attempt counts, recovery.

Every accepted attempt waits in one queue (at most ``[service] queue`` of them; more are
refused with 503 and a time to retry) and is graded by the course's
:class:`~coursekit.grading.session.GradingSession` exactly as ``course grade`` grades a
file: each grading process takes the next attempt round-robin over students (a student's
second attempt waits behind every other student's first one), never more of one student
at once than a quarter of the grading processes (at least one), and never two of the same
student and module (a second submission of a module waits for the first). With
a Dask cluster (``--scheduler``) the waiting attempts go to the cluster together.

The gradebook holds one submission per student and module: the attempt that counts
(``[service] counts``): the last one before the due date (the last of all when none was on
time), or the best one. A new attempt is graded into the gradebook; if it does not count,
the one that does is graded again, so that the gradebook, its feedback page and the
grading root's run record always agree; every attempt keeps its own result and feedback
page. The attempt that counts is also kept in the submissions folder
(``<submissions>/<student>/<module>/<name>.ipynb`` with ``timestamp.txt``), from which
``course grade --submissions`` grades it the same way again (it keeps it as unchanged,
or grades it anew with ``--regrade``).

Nothing is lost when the service is killed: on start, every attempt still ``queued`` or
``grading`` is queued again, oldest first (and every one the grader failed on, once more,
as the next ``course grade`` grades again what failed); one whose grade reached the
gradebook before the service stopped (the run record holds its fingerprint) is not graded
again. The gradebook is then checked to hold the attempt that counts for every student and
module.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import statistics
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from coursekit import nbg
from coursekit.course import Module
from coursekit.grading.grade import fingerprints, write_grades
from coursekit.grading.records import deadlines
from coursekit.grading.records.feedback import MAX_MESSAGE, read_scores
from coursekit.grading.records.results import Job, Result, RunRecord, late_text
from coursekit.grading.session import GradingSession, Submission
from coursekit.handin import ServiceSettings
from coursekit.schedule import window_end
from coursekit.service.intake import Cells
from coursekit.service.store import Attempt, Store
from coursekit.text import clean, number

CSV_EVERY = 30.0  # seconds between two writes of grades.csv while submissions come in
RECENT = 500  # submissions the latency figures are taken over


def now() -> datetime:
    """Now, naive UTC (as the database and nbgrader keep times)."""
    return datetime.now(UTC).replace(tzinfo=None)


def utc(stamp: datetime) -> str:
    return stamp.replace(microsecond=0).isoformat() + "Z"


@dataclass(frozen=True)
class Task:
    """Grade attempt ``attempt``, or (``attempt`` None) put the attempt that counts for
    ``key`` back into the gradebook."""

    key: tuple[str, str]
    attempt: int | None


class Grader:
    """The service's grading side: the queue, the grading threads, the record of what
    counts (see the module's docstring)."""

    def __init__(self, session: GradingSession, store: Store, settings: ServiceSettings,
                 cells: dict[str, Cells], submissions: Path | None,
                 log: Callable[[str], None] = print) -> None:
        self.session = session
        self.groot = session.groot
        self.store = store
        self.settings = settings
        self.cells = cells
        self.submissions = submissions
        self.log = log
        self.modules: dict[str, Module] = {m.folder: m for m in session.modules}
        self.workers = max(1, session.options.workers)
        self.on_change: Callable[[int], None] = lambda attempt: None
        self._cond = threading.Condition()
        self._queue: deque[Task] = deque()
        self._busy: set[tuple[str, str]] = set()
        self._served: dict[str, int] = {}  # student -> the turn their last attempt was taken
        self._turn = 0
        self._held: dict[tuple[str, str], int] = {}  # what the gradebook holds, by attempt
        self._threads: list[threading.Thread] = []
        self._stopping = False
        self._csv_dirty = False
        self._csv_written = 0.0
        self._late = deadlines.policy(session.course)
        self._due = deadlines.due_dates(session.course)
        self.started = time.time()
        self.accepted = self.graded = self.failed = 0
        self.latencies: deque[float] = deque(maxlen=RECENT)  # submitted -> result, seconds
        self.errors: deque[dict[str, Any]] = deque(maxlen=20)
        self._durations: deque[float] = deque(maxlen=100)  # seconds one grading took

    # -- starting and stopping ---------------------------------------------------------------
    def start(self) -> int:
        """Queue what the last run left, check what the gradebook holds, start the grading
        threads; how many attempts were queued again."""
        pending = self.store.pending()
        recorded = RunRecord(self.groot.root).fingerprints()
        for student, module in self.store.counted_keys():
            done = [a for a in self.store.attempts(student, module) if a.state == "done"]
            fp = recorded.get((student, module), (None, ""))[1]
            held = next((a.id for a in done if a.fingerprint and a.fingerprint == fp), None)
            if held is not None:
                self._held[(student, module)] = held
            counting = self.choose(done) if done else None
            if counting is not None and counting.id != held and not any(
                    p.key == (student, module) for p in pending):
                self._queue.append(Task((student, module), None))
        for attempt in pending:
            self._queue.append(Task(attempt.key, attempt.id))
        threads = 1 if self.session.cluster is not None else self.workers
        for i in range(threads):
            thread = threading.Thread(target=self._run, name=f"grading-{i}", daemon=True)
            thread.start()
            self._threads.append(thread)
        writer = threading.Thread(target=self._write_csv_now_and_then, name="grades-csv",
                                  daemon=True)
        writer.start()
        self._threads.append(writer)
        return len(pending)

    def stop(self, timeout: float = 60.0) -> None:
        """Let the grading threads finish what they grade (attempts still waiting stay
        queued in the database for the next start), then write grades.csv."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.1, deadline - time.monotonic()))
        self._write_csv()

    # -- the queue ------------------------------------------------------------------------------
    def waiting(self) -> int:
        """Attempts waiting to be graded (not being graded)."""
        with self._cond:
            return sum(1 for t in self._queue if t.attempt is not None)

    def busy(self) -> int:
        with self._cond:
            return len(self._busy)

    def position(self, attempt_id: int) -> int | None:
        """1 for the next attempt to be graded, ...; None when it is not waiting."""
        with self._cond:
            ahead = 0
            for task in self._order():
                if task.attempt == attempt_id:
                    return ahead + 1
                if task.attempt is not None:
                    ahead += 1
        return None

    @property
    def per_student(self) -> int:
        """Attempts of one student graded at once, whatever their modules: a quarter of
        the grading processes, at least one."""
        return max(1, math.ceil(self.workers / 4))

    def _order(self) -> list[Task]:
        """The waiting tasks in the order they are taken (under ``_cond``): round-robin
        over students, a student's next attempt behind every other student's first one
        (an attempt being graded counts as one before it), then the student served longest
        ago first, then in the order they came; putting an attempt back into the gradebook
        first of all."""
        taken = Counter(student for student, _ in self._busy)
        seen: Counter[str] = Counter()
        ranked = []
        for i, task in enumerate(self._queue):
            student = task.key[0]
            rank = -1 if task.attempt is None else taken[student] + seen[student]
            seen[student] += 1
            ranked.append((rank, self._served.get(student, 0), i, task))
        return [r[-1] for r in sorted(ranked, key=lambda r: r[:3])]

    def full(self) -> float | None:
        """None while the queue takes more; else seconds to wait before trying again."""
        waiting = self.waiting()
        if waiting < self.settings.queue:
            return None
        return self.retry_after(waiting)

    def retry_after(self, waiting: int) -> float:
        """A guess of when the queue has room: the attempts ahead times a grading's usual
        length, over the grading processes (between 5 s and 5 minutes)."""
        took = statistics.median(self._durations) if self._durations else 5.0
        return float(min(300, max(5, math.ceil(waiting * took / self.workers))))

    def add(self, attempt_id: int, key: tuple[str, str]) -> None:
        """Queue an accepted attempt."""
        with self._cond:
            self.accepted += 1
            self._queue.append(Task(key, attempt_id))
            self._cond.notify_all()

    def _take(self, limit: int) -> list[Task]:
        """Up to ``limit`` tasks whose keys are free and whose students have fewer than
        :attr:`per_student` being graded, in :meth:`_order` (waits for one); [] when
        stopping."""
        with self._cond:
            while True:
                if self._stopping:
                    return []
                taken: list[Task] = []
                keys: set[tuple[str, str]] = set()
                grading = Counter(student for student, _ in self._busy)
                for task in self._order():
                    student = task.key[0]
                    if task.key in self._busy or task.key in keys or \
                            grading[student] >= self.per_student:
                        continue
                    self._queue.remove(task)
                    taken.append(task)
                    keys.add(task.key)
                    grading[student] += 1
                    self._turn += 1
                    self._served[student] = self._turn
                    if len(taken) >= limit:
                        break
                if taken:
                    self._busy.update(keys)
                    return taken
                self._cond.wait(1.0)

    def _release(self, tasks: list[Task]) -> None:
        with self._cond:
            for task in tasks:
                self._busy.discard(task.key)
            self._cond.notify_all()

    def _run(self) -> None:
        cluster = self.session.cluster is not None
        while True:
            limit = max(2, 2 * self.session.cluster.connected) if cluster else 1
            tasks = self._take(limit)
            if not tasks:
                return
            try:
                if cluster:
                    self._grade_together(tasks)
                else:
                    self._do(tasks[0])
            except Exception as exc:  # noqa: BLE001 - the service keeps running; it is told
                if self._stopping:  # the grading processes went first: graded next start
                    continue
                for task in tasks:
                    self._fail(task, f"{type(exc).__name__}: {exc}")
            finally:
                self._release(tasks)

    # -- grading ---------------------------------------------------------------------------
    def job(self, attempt: Attempt) -> Job:
        module = self.modules[attempt.module]
        return Job(attempt.student, module,
                   self.groot.root / attempt.folder / module.notebook_name)

    def fingerprint(self, job: Job) -> str:
        """The fingerprint ``course grade`` gives this file (the same grader, file, time,
        extension and, when late, late policy)."""
        key = (job.student, job.module.folder)
        return fingerprints(self.groot, [job], {key: self.extension(*key)})[key]

    def extension(self, student: str, module: str) -> timedelta | None:
        """The extension the gradebook grants ``student`` for ``module``."""
        from nbgrader.api import MissingEntry

        with nbg.gradebook(self.groot.db_url, self.groot.course_id) as gb:
            try:
                return gb.find_submission(module, student).extension or None
            except MissingEntry:
                return None

    def deadline(self, student: str, module: str) -> datetime | None:
        """When ``student``'s ``module`` is due (extension and grace minutes included)."""
        due = self._due.get(module)
        if due is None:
            return None
        return due + (self.extension(student, module) or timedelta(0)) + timedelta(
            minutes=self._late.grace_minutes)

    def closes(self, student: str, module: str) -> datetime | None:
        """When ``student`` may no longer submit ``module`` (``[service] closes``)."""
        due = self._due.get(module)
        if due is None or self.settings.closes == "never":
            return None
        due = due + (self.extension(student, module) or timedelta(0))
        if self.settings.closes == "due":
            return due + timedelta(minutes=self._late.grace_minutes)
        return window_end(due, self._late) if self._late.policy != "none" else None

    def _stored(self, attempt: Attempt, fingerprint: str) -> Result | None:
        """The result of an attempt whose grade reached the gradebook before the service
        stopped (None if it did not)."""
        result, fp = RunRecord(self.groot.root).fingerprints().get(attempt.key, (None, ""))
        return result if result is not None and fp == fingerprint else None

    def _do(self, task: Task) -> None:
        if task.attempt is None:
            self._restore(task.key)
            return
        attempt = self.store.attempt(task.attempt)
        if attempt is None or attempt.state == "done":
            return
        resumed = attempt.state == "grading"
        self.store.set_state(attempt.id, "grading", started_at=now())
        job = self.job(attempt)
        fingerprint = self.fingerprint(job)
        result = self._stored(attempt, fingerprint) if resumed else None
        started = time.monotonic()
        if result is None:
            submission = Submission.from_job(job)
            if submission is None:
                raise OSError(f"{job.path}: the accepted notebook is gone")
            result = self.session.grade(submission, fingerprint)
        self._finish(attempt, job, fingerprint, result, time.monotonic() - started)

    def _grade_together(self, tasks: list[Task]) -> None:
        """Grade several tasks at once on the Dask cluster."""
        jobs: list[Job] = []
        prints: dict[tuple[str, str], str] = {}
        owners: dict[tuple[str, str], Attempt | None] = {}
        restored: list[Attempt] = []
        for task in tasks:
            if task.attempt is None:
                counting = self._counting(task.key)
                if counting is None or self._held.get(task.key) == counting.id:
                    continue
                attempt = counting
            else:
                found = self.store.attempt(task.attempt)
                if found is None or found.state == "done":
                    continue
                attempt = found
                resumed = attempt.state == "grading"
                self.store.set_state(attempt.id, "grading", started_at=now())
                job = self.job(attempt)
                fp = self.fingerprint(job)
                stored = self._stored(attempt, fp) if resumed else None
                if stored is not None:
                    self._finish(attempt, job, fp, stored, 0.0)
                    continue
            job = self.job(attempt)
            jobs.append(job)
            prints[task.key] = self.fingerprint(job)
            owners[task.key] = attempt if task.attempt is not None else None
            if task.attempt is None:
                self._held[task.key] = attempt.id
                restored.append(attempt)
        if not jobs:
            return
        started = time.monotonic()

        def arrived(result: Result, done: int, total: int) -> None:
            key = (result.student, result.assignment)
            attempt = owners.get(key)
            if attempt is not None:
                self._finish(attempt, self.job(attempt), prints[key], result,
                             time.monotonic() - started)

        self.session.grade_all(jobs, prints, arrived)
        for attempt in restored:
            self._mirror(attempt)
            self.log(f"serve: #{attempt.id} {attempt.student} {attempt.module}: graded again "
                     f"into the gradebook (it counts: {self.settings.counts})")

    def _finish(self, attempt: Attempt, job: Job, fingerprint: str, result: Result,
                seconds: float) -> None:
        """Record a graded attempt, settle which one counts, tell who waits."""
        if result.retry:
            self._fail(Task(attempt.key, attempt.id), result.reason, attempt)
            return
        self._held[attempt.key] = attempt.id
        view = self.view(attempt, job, result)
        page = self.groot.feedback(job)
        folder = self.groot.root / attempt.folder
        if page.is_file():
            shutil.copyfile(page, folder / "feedback.html")
        took = (now() - attempt.submitted_at).total_seconds()
        self.store.set_state(attempt.id, "done", graded_at=now(), seconds=took,
                             score=view["score"], max_score=view["max_score"],
                             fingerprint=fingerprint, result=json.dumps(view))
        counting = self.settle(attempt.key, inline=self.session.cluster is None)
        with self._cond:
            self.graded += 1
            self.latencies.append(took)
            self._durations.append(seconds)
            self._csv_dirty = True
        counts = "counts" if counting is not None and counting.id == attempt.id else \
            f"attempt {counting.id if counting else '?'} counts"
        flagged = " FLAGGED" if result.flagged else ""
        self.log(f"serve: #{attempt.id} {attempt.student} {attempt.module}: "
                 f"{number(view['score'])}/{number(view['max_score'])} {result.status}"
                 f"{flagged}, {counts} (graded in {seconds:.1f} s, {took:.1f} s after it "
                 "was submitted)")
        self.on_change(attempt.id)

    def _fail(self, task: Task, why: str, attempt: Attempt | None = None) -> None:
        """An attempt the grader could not grade (the grading process died twice, a bug):
        recorded as failed, with the reason kept for the instructor."""
        reason = clean(why)[:500]
        with self._cond:
            self.failed += 1
            self.errors.append({"at": utc(now()), "attempt": task.attempt,
                                "student": task.key[0], "module": task.key[1],
                                "error": reason})
        self.log(f"serve: #{task.attempt} {task.key[0]} {task.key[1]}: NOT GRADED: {reason}")
        if task.attempt is not None:
            self.store.set_state(task.attempt, "failed", graded_at=now(), error=reason)
            self.on_change(task.attempt)

    # -- which attempt counts ----------------------------------------------------------------------
    def choose(self, done: list[Attempt]) -> Attempt:
        """The attempt that counts among graded ones (``[service] counts``)."""
        deadline = self.deadline(*done[0].key) if self.settings.counts == "last" else None
        return choose(done, self.settings.counts, deadline)

    def _counting(self, key: tuple[str, str]) -> Attempt | None:
        done = [a for a in self.store.attempts(*key) if a.state == "done"]
        return self.choose(done) if done else None

    def settle(self, key: tuple[str, str], inline: bool = True) -> Attempt | None:
        """Mark the attempt that counts for ``key``, put it back into the gradebook if
        another one is there (now, or, when ``inline`` is false, as the next task: on a
        Dask cluster grading goes in batches), and keep it in the submissions folder."""
        counting = self._counting(key)
        if counting is None:
            return None
        self.store.set_counting(*key, counting.id)
        if self._held.get(key) != counting.id:
            if not inline:
                with self._cond:
                    self._queue.appendleft(Task(key, None))
                    self._cond.notify_all()
                return counting
            self._restore(key, counting)
        self._mirror(counting)
        return counting

    def _restore(self, key: tuple[str, str], counting: Attempt | None = None) -> None:
        """Grade the attempt that counts into the gradebook again (another one is there)."""
        counting = counting or self._counting(key)
        if counting is None or self._held.get(key) == counting.id:
            return
        job = self.job(counting)
        submission = Submission.from_job(job)
        if submission is None:
            raise OSError(f"{job.path}: the notebook of attempt {counting.id} is gone")
        result = self.session.grade(submission, self.fingerprint(job))
        if result.retry:
            raise RuntimeError(f"attempt {counting.id} could not be put back into the "
                               f"gradebook: {result.reason}")
        self._held[key] = counting.id
        self.store.set_counting(*key, counting.id)
        self._mirror(counting)
        self.log(f"serve: #{counting.id} {key[0]} {key[1]}: graded again into the gradebook "
                 f"(it counts: {self.settings.counts})")

    def _mirror(self, attempt: Attempt) -> None:
        """Keep the attempt that counts in the submissions folder, as ``course collect``
        lays a submission out."""
        if self.submissions is None:
            return
        job = self.job(attempt)
        dest = self.submissions / attempt.student / attempt.module
        dest.mkdir(parents=True, exist_ok=True)
        for src in (job.path, job.path.parent / "timestamp.txt"):
            tmp = dest / (src.name + ".tmp")
            shutil.copyfile(src, tmp)
            os.replace(tmp, dest / src.name)

    # -- what the student sees ---------------------------------------------------------------------
    def view(self, attempt: Attempt, job: Job, result: Result) -> dict[str, Any]:
        """A graded attempt as the student sees it: what its feedback page carries (the
        score, each test's name, points and failure message unless held back for review),
        never hidden-test code or anything the kernel printed."""
        module = job.module
        scores = read_scores(self.groot.db_url, self.groot.course_id, module, job.student)
        report = _read_json(self.groot.report(job))
        verdicts = report.get("verdicts") if isinstance(report.get("verdicts"), dict) else {}
        withhold = bool(report.get("withhold"))
        rows = scores.cells if scores is not None else {}
        tests = []
        for gid in self.cells[module.folder].tests:
            row = rows.get(gid, {})
            verdict = verdicts.get(gid) if isinstance(verdicts.get(gid), dict) else None
            earned, most = float(row.get("score", 0.0)), float(row.get("max", 0.0))
            ran_ok = bool(verdict and verdict.get("status") == "passed")
            passed = earned >= most > 0 or (ran_ok and not row)
            message = ""
            if not passed:
                if withhold:
                    message = "(held back while your instructor looks at this submission)"
                elif verdict and not ran_ok:
                    ename = str(verdict.get("ename", "")) or "Error"
                    text = str(verdict.get("message", ""))
                    message = clean(f"{ename}: {text}" if text else ename)
                    if len(message) > MAX_MESSAGE:
                        message = message[:MAX_MESSAGE] + "..."
                elif not verdict:
                    message = "not run (the notebook stopped before this test)"
            tests.append({"name": gid, "points": earned, "max_points": most,
                          "passed": passed, "message": message})
        max_score = scores.max_score if scores is not None and scores.max_score else \
            result.max_score
        raw = scores.score if scores is not None else 0.0
        penalty = scores.penalty if scores is not None else 0.0
        due = self._due.get(attempt.module)
        late = ""
        if due is not None:
            extension = self.extension(attempt.student, attempt.module) or timedelta(0)
            late = late_text((attempt.submitted_at - due - extension).total_seconds())
        notes = [str(n) for n in attempt.view.get("notes", [])]  # made when it was accepted
        events = report.get("events") if isinstance(report.get("events"), list) else []
        notes += [clean(str(e.get("reason", ""))) for e in events
                  if isinstance(e, dict) and e.get("reason")]
        if result.status != "graded" and not events:
            notes.append("your notebook could not be run to its end; your instructor sees why")
        if withhold:
            notes.append("the failure messages are held back while your instructor looks at "
                         "this submission; the scores stand")
        return {"attempt": attempt.id, "student": attempt.student, "module": attempt.module,
                "state": "done", "submitted": utc(attempt.submitted_at),
                "status": str(result.status), "score": max(0.0, raw - penalty),
                "raw_score": raw, "max_score": float(max_score), "penalty": penalty,
                "late": late, "tests": tests, "notes": notes, "withheld": withhold}

    # -- grades.csv -----------------------------------------------------------------------
    def _write_csv(self) -> None:
        with self._cond:
            if not self._csv_dirty:
                return
            self._csv_dirty = False
        try:
            write_grades(self.groot)
            self._csv_written = time.monotonic()
        except Exception as exc:  # noqa: BLE001 - grading goes on; it is told
            self.log(f"serve: could not write grades.csv ({type(exc).__name__}: {exc})")

    def _write_csv_now_and_then(self) -> None:
        while True:
            with self._cond:
                if self._stopping:
                    return
                self._cond.wait(CSV_EVERY)
            if time.monotonic() - self._csv_written >= CSV_EVERY:
                self._write_csv()

    # -- the instructor's view -----------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        """Queue, workers, latency and recent errors, for the status endpoint."""
        with self._cond:
            latencies = sorted(self.latencies)
            errors = list(self.errors)
            busy = len(self._busy)
            waiting = sum(1 for t in self._queue if t.attempt is not None)
            counts = {"accepted": self.accepted, "graded": self.graded, "failed": self.failed}

        def quantile(q: float) -> float | None:
            if not latencies:
                return None
            return round(latencies[min(len(latencies) - 1, int(q * len(latencies)))], 2)

        cluster = self.session.cluster
        return {"queue": waiting, "queue_limit": self.settings.queue, "grading": busy,
                "workers": cluster.connected if cluster is not None else self.workers,
                "where": f"Dask scheduler {self.session.options.scheduler}" if cluster
                is not None else "local grading processes",
                "latency_seconds": {"p50": quantile(0.5), "p95": quantile(0.95),
                                    "over": len(latencies)},
                "uptime_seconds": round(time.time() - self.started), **counts,
                "last_errors": errors}


def choose(done: list[Attempt], counts: str, deadline: datetime | None) -> Attempt:
    """The attempt that counts among the graded ``done`` of one student and module:
    ``counts = "best"``, the highest score after the late penalty (the later one of two
    equal); ``"last"``, the last one handed in by ``deadline`` (due date, extension and
    grace minutes; None: no due date), or the last of all when none was."""
    if not done:
        raise ValueError("no graded attempt to choose from")
    if counts == "best":
        return max(done, key=lambda a: (a.score or 0.0, a.submitted_at, a.id))
    on_time = [a for a in done if deadline is None or a.submitted_at <= deadline]
    return max(on_time or done, key=lambda a: (a.submitted_at, a.id))


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
