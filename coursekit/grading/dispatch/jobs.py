"""A submission as it travels between the instructor's process and a grading worker.

The instructor's process turns a job into a request, the submission as bytes
(:func:`make_request`); a grading worker, a local process or one on a Dask cluster, grades
it in a private grading root made from the grading bundle (:class:`Grader`, around
:func:`coursekit.grading.execution.submission.grade_one`) and answers with the result, the
submission's gradebook rows and the files grading wrote; the instructor's process alone
writes them into the grading root and the course gradebook (:func:`store_answer`).

A request: ``{"student", "module", "notebook": bytes, "timestamp": bytes or None}``.
An answer: ``{"result": Result fields, "detail": gradebook rows or None, "files":
{"autograded/<student>/<module>/<name>": bytes, ...}, "seconds"}``, or ``{"failed":
reason}`` when the worker could not grade it (``"retry": True`` when another run may
succeed: a worker that died, a sandbox that did not start).
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path, PurePosixPath
from typing import Any

from coursekit.course import CourseError
from coursekit.grading.records import deadlines
from coursekit.grading.dispatch.bundle import GRADEBOOK, BundledCourse
from coursekit.grading.records.gradebook import merge_submission, submission_detail
from coursekit.grading.records.results import STUDENT_ID_RE, Job, Result, max_points
from coursekit.grading.execution import kernelserver
from coursekit.grading.execution.kerneloutput import remove_tree
from coursekit.grading.records.feedback import render as render_feedback
from coursekit.grading.records.root import GradingRoot
from coursekit.text import clean
from coursekit.grading.execution.submission import (
    MAX_NOTEBOOK_BYTES,
    clear_job,
    grade_one,
    precheck,
)

#: The grading root's folders of one submission that travel back from a worker.
KINDS = ("submitted", "autograded", "reports")


def invalid_id(student: str) -> str:
    """Why ``student`` cannot be a student id (empty if it can)."""
    if STUDENT_ID_RE.match(student):
        return ""
    return f"student id {student!r} must be letters, digits, '.', '_' or '-'"


def make_request(job: Job) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """``(request, None)`` for a submission to send to a worker, or ``(None, answer)`` when
    there is nothing to grade (no file, a file that cannot be read, an invalid student id)."""
    why = invalid_id(job.student)
    if why:
        return None, _answer(job, "invalid", why)
    try:
        too_big = job.path.stat().st_size > MAX_NOTEBOOK_BYTES
        data = b"" if too_big else job.path.read_bytes()
    except OSError:
        too_big = False
        data = None
    if too_big or data is None:
        status, reason = precheck(job.path) or ("invalid", f"cannot read {job.path.name}")
        return None, _answer(job, status, reason)
    stamp = job.path.parent / "timestamp.txt"  # the submission time, as nbgrader keeps it
    try:
        timestamp = stamp.read_bytes() if stamp.is_file() else None
    except OSError:
        timestamp = None
    return {"student": job.student, "module": job.module.folder, "notebook": data,
            "timestamp": timestamp}, None


def _answer(job: Job, status: str, reason: str) -> dict[str, Any]:
    result = Result(job.student, job.module.folder, 0, max_points(job.module.source_notebook),
                    status, reason)
    return {"result": asdict(result), "detail": None, "files": {}}


class Grader:
    """A worker's private grading root, made from an unpacked grading bundle: grades one
    request at a time with :func:`grade_one`, exactly as for a local worker."""

    def __init__(self, bundle: Path, scratch: Path, overrides: dict[str, dict[str, Any]],
                 sandbox: bool = True) -> None:
        self.bundle = bundle.resolve()
        self.course = BundledCourse(self.bundle)
        root = scratch.resolve() / "root"
        if root.exists():
            shutil.rmtree(root)
        root.mkdir(parents=True)
        (root / "source_notebooks").symlink_to(self.bundle / "source_notebooks")
        self.groot = GradingRoot(self.course, root, "sqlite:///" + str(root / GRADEBOOK),
                                 overrides, sandbox)
        self.incoming = scratch.resolve() / "incoming"
        self.modules = {m.folder: m for m in self.course.modules()}
        self.db_ready = False

    def grade(self, request: dict[str, Any]) -> dict[str, Any]:
        """Grade one request; the answer (see the module's docstring)."""
        started = time.monotonic()
        module = self.modules.get(str(request.get("module")))
        student = str(request.get("student"))
        if module is None or not module.source_notebook.is_file():
            return {"failed": f"module {request.get('module')!r} is not in the grading bundle"}
        if why := invalid_id(student):
            return {"failed": why}
        if not self.db_ready:  # the bundle's gradebook may come after the process started
            shutil.copyfile(self.bundle / GRADEBOOK, self.groot.root / GRADEBOOK)
            self.db_ready = True
        folder = self.incoming / student / module.folder
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        path = folder / module.notebook_name
        path.write_bytes(request["notebook"])
        if request.get("timestamp") is not None:
            (folder / "timestamp.txt").write_bytes(request["timestamp"])
        job = Job(student, module, path)
        try:
            result = grade_one(self.groot, job)
        except Exception as exc:  # noqa: BLE001 - the sandbox, the fork server, a bug
            # whatever the kernel of this submission left, the next one starts afresh
            kernelserver.stop()
            why = str(exc) if isinstance(exc, CourseError) else (
                f"grading failed ({type(exc).__name__}: {exc})")
            return {"failed": why, "retry": True}
        finally:
            remove_tree(folder)
        detail = submission_detail(self.groot.db_url, module.folder, student)
        files = self._files(job)
        clear_job(self.groot, job)
        return {"result": asdict(result), "detail": detail, "files": files,
                "seconds": time.monotonic() - started}

    def _files(self, job: Job) -> dict[str, bytes]:
        """The regular files grading wrote for ``job`` (links are not followed)."""
        files: dict[str, bytes] = {}
        for kind in KINDS:
            folder = self.groot.root / kind / job.student / job.module.folder
            if not folder.is_dir():
                continue
            for path in sorted(folder.rglob("*")):
                if path.is_file() and not path.is_symlink():
                    files[path.relative_to(self.groot.root).as_posix()] = path.read_bytes()
        return files


def _safe_path(rel: str, job: Job) -> PurePosixPath:
    path = PurePosixPath(rel)
    parts = path.parts
    if (len(parts) < 4 or parts[0] not in KINDS or parts[1:3] != (job.student, job.module.folder)
            or any(p in ("", ".", "..") for p in parts) or path.is_absolute()):
        raise CourseError(f"a grading worker answered with the file {rel!r}, which is not one "
                          f"of {job.student} {job.module.folder}'s")
    return path


def answer_store(groot: GradingRoot, log: Callable[[str], None],
                 late: deadlines.Policy | None = None, feedback: bool = True
                 ) -> Callable[[Job, dict[str, Any]], Result]:
    """How every way of grading (local processes, a Dask cluster, this process) stores an
    answer: the notes the worker made on the way (a process that died, ...) are logged, then
    :func:`store_answer`."""

    def store(job: Job, answer: dict[str, Any]) -> Result:
        for note in answer.get("notes", []):
            log(f"grade: {job.student} {job.module.folder}: {clean(note)}")
        return store_answer(groot, job, answer, late, feedback)

    return store


def store_answer(groot: GradingRoot, job: Job, answer: dict[str, Any],
                 late: deadlines.Policy | None = None, feedback: bool = True) -> Result:
    """Write a worker's answer into the grading root and the course gradebook (this
    process is the only writer), then (``feedback``) the submission's feedback page, made
    from the course gradebook as it is now; the result, with the page's path."""
    folder = job.module.folder
    clear_job(groot, job)
    if "failed" in answer:
        merge_submission(groot.db_url, folder, job.student, None, groot.course_id)
        return Result(job.student, folder, 0, max_points(job.module.source_notebook), "error",
                      answer["failed"], sandboxed=groot.sandbox, retry=bool(answer.get("retry")))
    files = {_safe_path(rel, job): data for rel, data in answer.get("files", {}).items()}
    for rel, data in files.items():
        target = groot.root.joinpath(*rel.parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    merge_submission(groot.db_url, folder, job.student, answer.get("detail"), groot.course_id,
                     late)
    result = Result(**answer["result"])
    result.feedback = ""
    if feedback and result.status in ("graded", "error"):
        page, _ = render_feedback(groot.root, groot.db_url, groot.course_id, job.module,
                                  job.student, force=True)
        result.feedback = str(page) if page else ""
    return result
