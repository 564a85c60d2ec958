"""Grading as a library: a :class:`GradingSession` grades submissions into one grading root.

Everything that grades goes through it: ``course grade``, ``course check``, ``course demo``
and the grading service (``course serve``)::

    options = GradingOptions(workers=2)
    with GradingSession(course, Path("grading"), options=options) as session:
        result = session.grade(Submission("ada", "01_tensor", notebook_bytes, submitted_at))

A session is opened once per course and grading root: it writes the grading bundle and the
gradebook template, fills the root and the course gradebook with the modules it grades,
and starts its grading processes (kept warm between submissions) or connects its Dask
cluster. :meth:`GradingSession.grade` may be called from several threads at once: each
submission is graded by a process of its own, and one lock makes the session the only
writer of the gradebook, the grading root's files and its run record (``results.jsonl``).
:meth:`GradingSession.grade_all` grades many at once with progress.

The session keeps no state in the process around it (no environment changed, no global
server): the grading processes get the environment they need as their own.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from coursekit.course import Course, CourseError, Module
from coursekit.grading.dispatch.bundle import (
    add_gradebook,
    digest,
    grader_digest,
    pack,
    submission_digest,
    write_bundle,
)
from coursekit.grading.dispatch.jobs import Grader, invalid_id, store_answer
from coursekit.grading.execution.submission import MAX_NOTEBOOK_BYTES, too_big
from coursekit.grading.records import deadlines
from coursekit.grading.records.gradebook import make_template
from coursekit.grading.records.results import Job, Result, RunRecord, Status, max_points
from coursekit.grading.records.root import (
    GradingRoot,
    fill_root,
    kernel_environment,
    kernel_env,
    open_root,
)

if TYPE_CHECKING:
    from coursekit.grading.dispatch.cluster import Cluster
    from coursekit.grading.dispatch.pool import Pool

Store = Callable[[Job, dict[str, Any]], Result]


@dataclass(frozen=True)
class GradingOptions:
    """How a session grades (fixed for its life)."""

    sandbox: bool = True  # kernels sealed off (only trusted notebooks without)
    feedback: bool = True  # a feedback page per submission
    workers: int = 1  # grading processes on this machine (0: in this process, one at a time)
    scheduler: str | None = None  # a Dask scheduler instead of local processes
    overrides: Mapping[str, Mapping[str, object]] = field(
        default_factory=lambda: MappingProxyType({}))  # nbgrader config on grader_config.py
    job_timeout: float | None = None  # seconds for one submission (default: from the limits)

    def __post_init__(self) -> None:
        if self.workers < 0:
            raise CourseError(f"--workers {self.workers}: must be 0 (in this process) or more")
        if self.scheduler is not None and self.workers > 1:
            raise CourseError(f"--workers {self.workers} and --scheduler {self.scheduler}: "
                              "give one of them (with --scheduler the Dask workers grade)")
        frozen = {k: MappingProxyType(dict(v)) for k, v in dict(self.overrides).items()}
        object.__setattr__(self, "overrides", MappingProxyType(frozen))

    def plain_overrides(self) -> dict[str, dict[str, object]]:
        """The overrides as plain dicts (for nbgrader's config)."""
        return {k: dict(v) for k, v in self.overrides.items()}


@dataclass(frozen=True)
class Submission:
    """One notebook handed in: by ``student`` for the module folder ``module``."""

    student: str
    module: str
    notebook: bytes
    submitted_at: datetime | None = None  # when it was handed in (aware, or naive UTC)

    @classmethod
    def from_job(cls, job: Job) -> Submission | None:
        """The submission a job's file holds (with ``timestamp.txt`` beside it, as nbgrader
        keeps it); None if there is no file to read."""
        try:
            data = job.path.read_bytes()
        except OSError:
            return None
        return cls(job.student, job.module.folder, data, _stamp_time(job.path))

    def timestamp(self) -> bytes | None:
        """The submission time as nbgrader's ``timestamp.txt`` holds it."""
        if self.submitted_at is None:
            return None
        when = self.submitted_at
        if when.tzinfo is not None:
            when = when.astimezone(UTC).replace(tzinfo=None)
        return (when.isoformat(sep=" ") + " UTC").encode()


def _stamp_time(path: Path) -> datetime | None:
    stamp = path.parent / "timestamp.txt"
    try:
        text = stamp.read_text(encoding="utf-8").strip() if stamp.is_file() else ""
    except OSError:
        return None
    if not text:
        return None
    from nbgrader.utils import parse_utc

    try:
        return parse_utc(text)
    except (ValueError, OverflowError):
        return None


class GradingSession:
    """Grades submissions of ``modules`` into the grading root ``root`` (see the module's
    docstring). Use it as a context manager (it opens when it first grades) or call
    :meth:`open` and :meth:`close`."""

    def __init__(self, course: Course, root: Path, *, db_url: str | None = None,
                 modules: list[Module] | None = None,
                 options: GradingOptions | None = None,
                 log: Callable[[str], None] = print) -> None:
        self.course = course
        self.modules = list(modules or course.modules())
        self.options = options or GradingOptions()
        self.log = log
        self.groot: GradingRoot = open_root(course, root, db_url,
                                            self.options.plain_overrides(),
                                            self.options.sandbox)
        self.record = RunRecord(self.groot.root)
        self._lock = threading.Lock()  # the one writer of the gradebook and the record
        self._cluster_lock = threading.Lock()
        self._late = deadlines.policy(course)
        self._graders: dict[str, str] = {}
        self._pool: Pool | None = None
        self._cluster: Cluster | None = None
        self._serial: Grader | None = None
        self._opened = False

    @property
    def root(self) -> Path:
        return self.groot.root

    def module(self, name: str) -> Module:
        """The module of this session named by ``name`` (its folder, name or number)."""
        for m in self.modules:
            if name in (m.folder, m.name, m.number, str(int(m.number))):
                return m
        raise CourseError(f"module {name!r}: not one this session grades "
                          f"({', '.join(m.folder for m in self.modules)})")

    # -- opening and closing ---------------------------------------------------------------
    def open(self, expected: int | None = None) -> GradingSession:
        """Write the bundle, fill the root and the gradebook, start the grading processes
        (``expected``: how many submissions are coming, to start no more than needed)."""
        if self._opened:
            return self
        groot, scratch = self.groot, self.groot.root / "workers"
        bundle = write_bundle(self.course, self.modules, scratch / "bundle")
        workers = self.options.workers
        if workers and self.options.scheduler is None:
            from coursekit.grading.dispatch.pool import Pool

            self._pool = Pool(groot, bundle, workers, job_timeout=self.options.job_timeout,
                              env=kernel_env(self.course))
            self._pool.start(min(workers, expected) if expected else workers)
        try:
            fill_root(groot, self.modules, self.log)
            deadlines.apply(groot, self.modules, self.log)
            add_gradebook(bundle, make_template(groot, self.modules, scratch / "template.db"))
            if self.options.scheduler is not None:
                from coursekit.grading.dispatch.cluster import Cluster
                from coursekit.grading.dispatch.pool import default_job_timeout, worker_options

                self._cluster = Cluster(self.options.scheduler, self.log)
                data = pack(bundle)
                self._cluster.prepare(data, digest(data), worker_options(groot),
                                      self.options.job_timeout or default_job_timeout(groot))
            elif not workers:
                self._serial = Grader(bundle, scratch / "serial", groot.overrides,
                                      groot.sandbox)
        except BaseException:
            self.close()
            raise
        self._opened = True
        return self

    def close(self) -> None:
        """Stop the grading processes (or leave the cluster)."""
        from coursekit.grading.execution import kernelserver

        if self._pool is not None:
            self._pool.close()
            self._pool = None
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None
        if self._serial is not None:
            kernelserver.stop()
            self._serial = None
        self._opened = False

    def __enter__(self) -> GradingSession:
        """The session; it opens when it first grades (or by :meth:`open`)."""
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def cluster(self) -> Cluster | None:
        return self._cluster

    @property
    def pool(self) -> Pool | None:
        return self._pool

    # -- grading -----------------------------------------------------------------------
    def fingerprint(self, submission: Submission, extension: str = "") -> str:
        """What a submission's grade depends on: the grader (module, configuration, course
        package, options), the notebook, its time and extension."""
        folder = submission.module
        if folder not in self._graders:
            options = {"overrides": self.groot.overrides, "sandbox": self.groot.sandbox}
            self._graders[folder] = grader_digest(self.course, self.module(folder), options)
        grader = self._graders[folder] + (f"; extension {extension}" if extension else "")
        return submission_digest(grader, submission.notebook, submission.timestamp())

    def store(self, job: Job, answer: dict[str, Any], fingerprint: str = "") -> Result:
        """Write a worker's answer: the grading root, the gradebook, the feedback page and
        the run record, under the session's one lock."""
        with self._lock:
            for note in answer.get("notes", []):
                self.log(f"grade: {job.student} {job.module.folder}: {note}")
            result = store_answer(self.groot, job, answer, self._late, self.options.feedback)
            if job.hint and result.status == Status.MISSING:
                result.reason += f"; {job.hint}"  # the notebook nearby that was probably meant
            self.record.add(result, "" if result.retry else fingerprint)
            return result

    def request(self, submission: Submission) -> tuple[dict[str, Any] | None, Result | None]:
        """The request a worker grades, or the result when there is nothing to grade."""
        module = self.module(submission.module)
        why = invalid_id(submission.student)
        if why:
            return None, Result(submission.student, module.folder, 0,
                                max_points(module.source_notebook), Status.INVALID, why)
        if len(submission.notebook) > MAX_NOTEBOOK_BYTES:
            return None, Result(submission.student, module.folder, 0,
                                max_points(module.source_notebook), Status.INVALID,
                                too_big(module.notebook_name, len(submission.notebook)))
        return {"student": submission.student, "module": module.folder,
                "notebook": submission.notebook, "timestamp": submission.timestamp()}, None

    def grade(self, submission: Submission, fingerprint: str = "") -> Result:
        """Grade one submission now, and store it; thread-safe (the Dask path grades one
        at a time)."""
        if not self._opened:
            self.open()
        module = self.module(submission.module)
        request, result = self.request(submission)
        job = Job(submission.student, module, self.root / "incoming" / submission.student
                  / module.folder / module.notebook_name)
        if request is None:
            assert result is not None
            with self._lock:
                self.record.add(result, "")
            return result
        if self._pool is not None:
            answer = self._pool.station.grade(request)
        elif self._cluster is not None:
            return self._grade_on_cluster(submission, job, fingerprint)
        else:
            assert self._serial is not None
            with self._lock, kernel_environment(self.course):
                answer = self._serial.grade(request)
        return self.store(job, answer, fingerprint or self.fingerprint(submission))

    def _grade_on_cluster(self, submission: Submission, job: Job, fingerprint: str) -> Result:
        """One submission on the Dask cluster, from a file in the grading root (the
        cluster grades files; one at a time)."""
        job.path.parent.mkdir(parents=True, exist_ok=True)
        job.path.write_bytes(submission.notebook)
        stamp = submission.timestamp()
        (job.path.parent / "timestamp.txt").unlink(missing_ok=True)
        if stamp is not None:
            (job.path.parent / "timestamp.txt").write_bytes(stamp)
        assert self._cluster is not None
        with self._cluster_lock:
            (result,) = self._cluster.run(
                [job], lambda j, a: self.store(j, a, fingerprint or self.fingerprint(submission)))
        return result

    def grade_all(self, jobs: list[Job], fingerprints: Mapping[tuple[str, str], str] | None = None,
                  on_result: Callable[[Result, int, int], None] | None = None) -> list[Result]:
        """Grade ``jobs`` (module by module, so a process keeps one module's sandbox for many
        submissions) with every grading process or Dask worker at once; ``on_result(result,
        done, total)`` as each one is stored."""
        if not self._opened:
            self.open(len(jobs))
        jobs = sorted(jobs, key=lambda j: (j.module.folder, j.student))
        prints = dict(fingerprints or {})

        def store(job: Job, answer: dict[str, Any]) -> Result:
            return self.store(job, answer, prints.get((job.student, job.module.folder), ""))

        if self._cluster is not None:
            self.log(f"grade: {len(jobs)} submissions, {self._cluster.connected} Dask worker(s)")
            return self._cluster.run(jobs, store, on_result)
        if self._pool is not None:
            self.log(f"grade: {len(jobs)} submissions, {self.options.workers} worker "
                     "process(es)")
            return self._pool.run(jobs, store, on_result)
        assert self._serial is not None
        from coursekit.grading.dispatch.jobs import make_request

        results: list[Result] = []
        with kernel_environment(self.course):
            for job in jobs:
                request, answer = make_request(job)
                if request is not None:
                    answer = self._serial.grade(request)
                assert answer is not None
                results.append(store(job, answer))
                if on_result:
                    on_result(results[-1], len(results), len(jobs))
        return results
