"""Grading on a Dask cluster: ``course grade --scheduler tcp://HOST:PORT``.

The instructor's process connects to a running Dask scheduler (``dask.distributed``), packs
the grading bundle (:mod:`coursekit.grading.dispatch.bundle`) and registers it with every worker as
a plugin (:mod:`coursekit.grading.dispatch.daskworker`): each worker checks it by its SHA-256,
unpacks it, starts grading processes from it and is refused, with the difference named, if
its Python, nbgrader, NumPy or course package differ from the instructor's or the sandbox
cannot run there. No folder is shared: a submission travels to a worker as bytes in its
task, and the answer (result, gradebook rows, executed notebook, feedback page, flags and
reasons) comes back, to be written into the grading root and the course gradebook by this
process alone (:func:`coursekit.grading.dispatch.jobs.store_answer`), as for local grading.

Submissions are sent in module order, a few more at a time than the workers have threads,
so that the scheduler holds only those in flight and a worker keeps the sandbox of one
module for many submissions.

Faults:

* a worker that dies while grading a submission: Dask gives the task to another worker;
  when a submission has been started on workers that died twice, it is stopped and recorded
  with the reason (the next run grades it again);
* the scheduler lost: :class:`ClusterStopped`, raised once everything that arrived is stored;
  ``course grade`` writes ``grades.csv`` for it and names what was not graded; the same
  command again grades only what is missing;
* no worker left that can grade, for :data:`NO_WORKER_WAIT` seconds: the same.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import uuid
import warnings
from collections import deque
from collections.abc import Callable
from contextlib import suppress
from typing import Any

from coursekit.course import CourseError
from coursekit.grading.dispatch import station
from coursekit.grading.dispatch.jobs import make_request
from coursekit.grading.records.results import Job, Result

ADDRESS_RE = re.compile(r"^(tcp|tls)://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):\d{1,5}$")
WORKER_WAIT = 60.0  # seconds to wait for a first worker
NO_WORKER_WAIT = 120.0  # seconds without any worker that can grade before giving up
WAIT_NOTE_EVERY = 30.0  # seconds between two notes that no worker can grade
POLL = 2.0  # seconds between looks at the cluster's workers
MAX_STARTS = 2  # a submission started on this many workers that died is recorded
RESULT_WAIT = 60.0  # seconds to fetch a finished answer from the worker that holds it


class ClusterStopped(CourseError):
    """Grading on the cluster cannot go on (the scheduler was lost, no worker is left)."""


def _dw() -> Any:
    """:mod:`coursekit.grading.dispatch.daskworker`, imported when first used (it imports
    ``distributed``, which local grading does not need)."""
    from coursekit.grading.dispatch import daskworker

    return daskworker


class ByValue:
    """A function that pickles by value inside any pickle. Dask pickles a task's function
    by reference (module and name) unless the task itself is the object pickled, and a
    worker has no course package to import it from; this carries the function's code."""

    def __init__(self, function: Callable[..., Any]) -> None:
        import cloudpickle

        self.function = function
        self.blob = cloudpickle.dumps(function)

    def __call__(self, *args: Any) -> Any:
        return self.function(*args)

    def __reduce__(self) -> tuple[Any, tuple[bytes]]:
        import cloudpickle

        return cloudpickle.loads, (self.blob,)


def check_address(address: str) -> str:
    """``address`` if it looks like a scheduler's address, else a :class:`CourseError`."""
    if not ADDRESS_RE.match(address.strip()):
        raise CourseError(f"--scheduler {address}: expected tcp://HOST:PORT, the address "
                          "`dask scheduler` prints (e.g. tcp://10.0.0.5:8786)")
    return address.strip()


class Cluster:
    """A connection to a Dask scheduler for one ``course grade`` run."""

    def __init__(self, address: str, log: Callable[[str], None] = print,
                 connect_timeout: float = 20.0) -> None:
        import cloudpickle
        import distributed
        from distributed.versions import VersionMismatchWarning

        from coursekit.grading.dispatch import daskworker

        self.address = check_address(address)
        self.log = log
        # the worker side travels by value: workers need not have the course package
        cloudpickle.register_pickle_by_value(station)
        cloudpickle.register_pickle_by_value(daskworker)
        for name in ("distributed", "distributed.client", "distributed.core",
                     "distributed.comm", "distributed.batched", "asyncio"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
        # Dask's own comparison of versions warns on the console; the workers' plugin
        # checks what grading depends on and names the differences
        warnings.filterwarnings("ignore", category=VersionMismatchWarning)
        try:
            self.client = distributed.Client(self.address, timeout=connect_timeout,
                                             set_as_default=False)
        except (OSError, TimeoutError) as exc:
            raise CourseError(f"--scheduler {self.address}: cannot reach the Dask scheduler "
                              f"({exc}); start one with `dask scheduler` and pass the address "
                              "it prints") from None
        self.resource = ""
        self.registered = False
        self.starts: dict[str, list[str]] = {}
        self.starts_lock = threading.Lock()
        self.workers: dict[str, int] = {}  # accepted worker -> threads
        self.refused: dict[str, str] = {}  # refused worker -> why
        self.took_part: set[str] = set()
        self._polled = 0.0
        self._placed_checked = 0.0
        self.wake = threading.Event()  # set when a future is done
        self.task = ByValue(daskworker.grade_task)
        self._no_worker_since: float | None = None
        self._waiting_said = 0.0  # when the last note that no worker can grade was logged

    # -- set-up -------------------------------------------------------------------------
    def prepare(self, data: bytes, digest: str, options: list[str], job_timeout: float,
                wait: float = WORKER_WAIT) -> None:
        """Send the packed bundle to every worker, check them; a :class:`CourseError` if no
        worker can grade."""
        deadline = time.monotonic() + wait
        said = False
        while not self._info().get("workers"):
            if time.monotonic() > deadline:
                raise CourseError(f"--scheduler {self.address}: no Dask worker connected "
                                  f"within {wait:.0f} s; start some with `dask worker "
                                  f"{self.address}`")
            if not said:
                self.log(f"grade: waiting for Dask workers to connect to {self.address}")
                said = True
            time.sleep(1.0)
        self.resource = f"coursekit-grading-{digest[:12]}"
        plugin = _dw().GradingPlugin(data, digest, station.versions(), options,
                                          job_timeout, self.resource)
        self.log(f"grade: sending the grading bundle ({len(data) / 1e6:.1f} MB, SHA-256 "
                 f"{digest[:12]}...) to the Dask workers")
        self.client.subscribe_topic(_dw().TOPIC, self._on_start)
        self.client.register_plugin(plugin)
        self.registered = True
        self._poll(force=True)
        if not self.workers:
            why = "; ".join(f"{w}: {r}" for w, r in sorted(self.refused.items()))
            raise CourseError(f"--scheduler {self.address}: no Dask worker can grade: "
                              f"{why or 'none is ready'}")

    def _info(self) -> dict[str, Any]:
        try:
            return self.client.scheduler_info()
        except Exception:  # noqa: BLE001 - the scheduler is gone: the caller finds out
            return {}

    def _on_start(self, event: Any) -> None:
        msg = event[1] if isinstance(event, tuple) else event
        if isinstance(msg, dict) and "key" in msg:
            with self.starts_lock:
                self.starts.setdefault(str(msg["key"]), []).append(str(msg.get("worker")))

    def _poll(self, force: bool = False) -> None:
        """Look at the workers: which can grade (and how many threads), which were refused."""
        if not force and time.monotonic() - self._polled < POLL:
            return
        self._polled = time.monotonic()
        workers = self._info().get("workers", {})
        accepted = {addr: int(w.get("resources", {}).get(self.resource, 0))
                    for addr, w in workers.items()
                    if w.get("resources", {}).get(self.resource)}
        unknown = [a for a in workers if a not in accepted and a not in self.refused]
        if unknown:
            try:
                statuses = self.client.run(_dw().worker_status, workers=unknown,
                                           on_error="return")
            except Exception:  # noqa: BLE001 - asked again at the next poll
                statuses = {}
            for addr, status in statuses.items():
                if isinstance(status, dict) and status.get("state") == "refused":
                    self.refused[addr] = str(status.get("reason"))
                    self.log(f"grade: Dask worker {addr} refused: {status.get('reason')}")
        for addr in sorted(set(accepted) - set(self.workers)):
            self.log(f"grade: Dask worker {addr} ready ({accepted[addr]} thread(s))")
        for addr in sorted(set(self.workers) - set(accepted)):
            self.log(f"grade: Dask worker {addr} left")
        had = bool(self.workers)
        self.workers = accepted
        if accepted:
            self._no_worker_since = None
            self._waiting_said = 0.0
        elif self._no_worker_since is None:
            self._no_worker_since = time.monotonic()
            if had:
                self._say_waiting()
        elif time.monotonic() - self._waiting_said >= WAIT_NOTE_EVERY:
            self._say_waiting()

    def _say_waiting(self) -> None:
        """Say, now and every :data:`WAIT_NOTE_EVERY` seconds, that no worker can grade."""
        self._waiting_said = time.monotonic()
        since = self._no_worker_since or self._waiting_said
        left = max(0.0, NO_WORKER_WAIT - (self._waiting_said - since))
        self.log(f"grade: no Dask worker can grade now; waiting up to {left:.0f} s more for "
                 f"one to connect to {self.address} (start one with `dask worker "
                 f"{self.address}`; Ctrl-C stops, and the same command goes on where it "
                 "stopped)")

    @property
    def connected(self) -> int:
        """Workers connected now that can grade."""
        return len(self.workers)

    # -- grading ------------------------------------------------------------------------
    def _check_alive(self) -> None:
        if self.client.status != "running":
            raise ClusterStopped(f"lost the Dask scheduler at {self.address}")
        if (self._no_worker_since is not None
                and time.monotonic() - self._no_worker_since > NO_WORKER_WAIT):
            raise ClusterStopped(f"no Dask worker that can grade has been connected to "
                                 f"{self.address} for {NO_WORKER_WAIT:.0f} s")

    def _submit(self, request: dict[str, Any], job: Job) -> Any:
        key = f"grade-{job.student}-{job.module.folder}-{uuid.uuid4().hex[:8]}"
        future = self.client.submit(self.task, request, key=key, pure=False,
                                    resources={self.resource: 1})
        future.add_done_callback(lambda _: self.wake.set())
        return future

    def run(self, jobs: list[Job],
            store: Callable[[Job, dict[str, Any]], Result],
            on_result: Callable[[Result, int, int], None] | None = None) -> list[Result]:
        """Grade ``jobs`` on the cluster; ``store`` writes each answer (in this thread, see
        :func:`coursekit.grading.dispatch.jobs.answer_store`);
        ``on_result(result, done, total)`` as each one is stored."""
        pending = deque(jobs)
        inflight: dict[Any, tuple[Job, dict[str, Any]]] = {}
        unplaced: dict[str, float] = {}  # key -> since when no worker had it
        retried: set[str] = set()
        lost: dict[tuple[str, str], int] = {}  # answers lost after grading
        results: list[Result] = []

        def finish(job: Job, answer: dict[str, Any]) -> None:
            if answer.get("worker"):
                self.took_part.add(str(answer["worker"]))
            results.append(store(job, answer))
            if on_result:
                on_result(results[-1], len(results), len(jobs))

        while pending or inflight:
            self._poll()
            self._check_alive()
            window = max(2, 2 * sum(self.workers.values()))
            while pending and len(inflight) < window:
                job = pending.popleft()
                request, answer = make_request(job)
                if request is None:
                    finish(job, answer or {})
                    continue
                inflight[self._submit(request, job)] = (job, request)
            if not inflight:
                continue
            self.wake.wait(1.0)
            self.wake.clear()
            for future in [f for f in inflight if f.done()]:
                if future.status == "cancelled":
                    self._check_alive()  # the scheduler went away
                    continue
                job, request = inflight.pop(future)
                unplaced.pop(future.key, None)
                answer = self._answer(future)
                future.release()  # its result leaves the worker's memory: nothing to redo
                which = (job.student, job.module.folder)
                if answer.get("lost") and lost.get(which, 0) < MAX_STARTS:
                    # graded, but the worker holding the answer died before it came back
                    lost[which] = lost.get(which, 0) + 1
                    self.log(f"grade: the answer for {job.student} {job.module.folder} was "
                             "lost with the Dask worker that graded it; grading it again")
                    inflight[self._submit(request, job)] = (job, request)
                    continue
                finish(job, answer)
            self._watch_starts(inflight, retried, finish)
            self._watch_unplaced(inflight, unplaced)
        return results

    def _answer(self, future: Any) -> dict[str, Any]:
        from distributed.scheduler import KilledWorker

        if future.status == "finished":
            # the answer waits on the worker that graded it; if that worker dies first, the
            # scheduler takes the task back (its status leaves "finished") and, with no
            # worker holding the run's resource yet, would wait: it is sent again instead
            deadline = time.monotonic() + RESULT_WAIT
            why = "the worker holding it was lost"
            while future.status == "finished" and time.monotonic() < deadline:
                try:
                    return future.result(timeout=2.0)
                except TimeoutError:
                    why = f"not fetched within {RESULT_WAIT:.0f} s"
                except Exception as exc:  # noqa: BLE001 - the result could not come back
                    why = f"{type(exc).__name__}: {exc}"
                    break
            return {"failed": f"its answer did not arrive ({why})", "retry": True,
                    "lost": True}
        exc = future.exception()
        with self.starts_lock:
            workers = list(self.starts.get(future.key, []))
        if isinstance(exc, KilledWorker):
            return {"failed": f"the Dask workers grading this submission died "
                              f"({', '.join(workers) or 'workers unknown'}); Dask gave up on "
                              "it", "retry": True}
        return {"failed": f"grading failed on the cluster ({type(exc).__name__}: {exc})",
                "retry": True}

    def _watch_starts(self, inflight: dict[Any, tuple[Job, dict[str, Any]]],
                      retried: set[str],
                      finish: Callable[[Job, dict[str, Any]], None]) -> None:
        """A submission started again means the worker grading it died: say so; started on a
        third worker (two died), stop it and record why."""
        with self.starts_lock:
            starts = {k: list(v) for k, v in self.starts.items()}
        for future, (job, _) in list(inflight.items()):
            workers = starts.get(future.key, [])
            if len(workers) > MAX_STARTS:
                inflight.pop(future)
                future.cancel()
                finish(job, {"failed": f"the Dask worker grading this submission died "
                                       f"{MAX_STARTS} times ({', '.join(workers[:MAX_STARTS])})",
                             "retry": True})
            elif len(workers) > 1 and future.key not in retried:
                retried.add(future.key)
                self.log(f"grade: Dask worker {workers[0]} was lost while grading "
                         f"{job.student} {job.module.folder}; grading it again on {workers[1]}")

    def _watch_unplaced(self, inflight: dict[Any, tuple[Job, dict[str, Any]]],
                        unplaced: dict[str, float]) -> None:
        """Dask does not hand a waiting task to a worker that gains the run's resource after
        joining; a submission that no worker has had for a while, while some can grade, is
        sent again."""
        if not self.workers or time.monotonic() - self._placed_checked < POLL:
            return  # every few seconds, and only when some worker can take it
        self._placed_checked = time.monotonic()
        try:
            placed = {k for keys in self.client.processing().values() for k in keys}
        except Exception:  # noqa: BLE001 - looked at again after the next poll
            return
        now = time.monotonic()
        for future, (job, request) in list(inflight.items()):
            key = future.key
            if key in placed or future.done():
                unplaced.pop(key, None)
                continue
            since = unplaced.setdefault(key, now)
            if now - since > 3 * POLL:
                inflight.pop(future)
                unplaced.pop(key, None)
                future.cancel()
                again = self._submit(request, job)
                with self.starts_lock:  # where it was started before still counts
                    self.starts[again.key] = list(self.starts.get(key, []))
                inflight[again] = (job, request)

    def summary(self) -> str:
        """One line on the workers of the run."""
        line = (f"grade: on the Dask cluster at {self.address}: {len(self.took_part)} "
                f"worker(s) graded, {self.connected} connected at the end")
        if self.refused:
            line += f", {len(self.refused)} refused"
        return line

    def close(self) -> None:
        """Take the plugin off the workers (their grading processes stop) and disconnect."""
        with suppress(Exception):
            self.client.unsubscribe_topic(_dw().TOPIC)
        if self.registered and self.client.status == "running":
            with suppress(Exception):
                self.client.unregister_worker_plugin(_dw().PLUGIN)
        with suppress(Exception):
            self.client.close(timeout=10)
