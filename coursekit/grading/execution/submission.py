"""Grading one submission (:func:`grade_one`): an independent unit.

It reads only its own file and writes only its own folders under the grading root and its
own rows in the gradebook, so submissions can be spread over worker processes.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import nbformat

from coursekit import nbg
from coursekit.course import CourseError
from coursekit.grading.execution import kernelserver
from coursekit.grading.execution.kerneloutput import remove_tree
from coursekit.grading.execution.flags import is_tampering, review
from coursekit.grading.execution.restore import restore_locked_cells
from coursekit.text import number
from coursekit.grading.records.results import STUDENT_ID_RE, Job, Result, max_points
from coursekit.grading.records.root import GradingRoot
from coursekit.text import clean


#: The largest notebook graded (a notebook's own outputs, images included, rarely reach a
#: tenth of it; a page made of a much larger one would cost the instructor's process dearly).
MAX_NOTEBOOK_BYTES = 20 * 2**20


def too_big(name: str, size: int) -> str:
    """Why a notebook of ``size`` bytes (more than :data:`MAX_NOTEBOOK_BYTES`) is not graded."""
    return (f"{name} is {size / 2**20:.1f} MB; a notebook handed in may be at most "
            f"{MAX_NOTEBOOK_BYTES // 2**20} MB (clear its outputs)")


def precheck(path: Path) -> tuple[str, str] | None:
    """``(status, reason)`` if the file cannot be graded at all, else None."""
    if not path.exists():
        return "missing", f"no submission: {path.parent.name}/{path.name} not found"
    if not path.is_file():
        return "invalid", f"{path.name} is not a file"
    try:
        size = path.stat().st_size
    except OSError as exc:
        return "invalid", f"cannot read {path.name}: {exc.strerror}"
    if size > MAX_NOTEBOOK_BYTES:
        return "invalid", too_big(path.name, size)
    try:
        data = path.read_bytes()
    except OSError as exc:
        return "invalid", f"cannot read {path.name}: {exc.strerror}"
    if not data.strip():
        return "empty", f"{path.name} is empty ({len(data)} bytes)"
    try:
        text = data.decode("utf-8")
        raw = json.loads(text)
    except UnicodeDecodeError as exc:
        return "corrupt", f"{path.name} is not UTF-8 text (byte {exc.start})"
    except json.JSONDecodeError as exc:
        return "corrupt", (f"{path.name} is not valid JSON "
                           f"(line {exc.lineno}, column {exc.colno}: {exc.msg})")
    if not isinstance(raw, dict) or "cells" not in raw:
        return "corrupt", f"{path.name} is JSON but not a notebook (no 'cells')"
    try:
        nb = nbformat.reads(text, as_version=4)
        nbformat.validate(nb)
    except Exception as exc:  # nbformat raises several kinds
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return "invalid", f"{path.name} is not a valid notebook: {msg[:200]}"
    return None


def clear_job(groot: GradingRoot, job: Job) -> None:
    """Remove what an earlier grading of ``job`` left in the grading root's folders."""
    for path in (groot.submitted(job), groot.autograded(job), groot.feedback(job),
                 groot.report(job)):
        if path.parent.exists() and not remove_tree(path.parent):
            raise CourseError(f"{path.parent}: cannot remove what an earlier grading left")


def _forget_submission(groot: GradingRoot, job: Job) -> None:
    from nbgrader.api import MissingEntry

    with nbg.gradebook(groot.db_url) as gb:
        gb.update_or_create_student(job.student)
        try:
            gb.find_submission(job.module.folder, job.student)
        except MissingEntry:
            return
        gb.remove_submission(job.module.folder, job.student)


def _failure_reason(result: dict, log_text: str) -> str:
    text = (log_text or "") + "\n" + (result.get("error") or "")
    if re.search(r"DeadKernelError|Kernel died|kernel.*(died|dead)", text, re.IGNORECASE):
        return ("the kernel died while running the notebook (the code crashed Python, called "
                "exit, or ran out of memory)")
    if "CellTimeoutError" in text or "TimeoutError" in text:
        return "a cell ran too long and the kernel did not recover"
    detail = nbg.failure_text(result, limit=3).replace("\n", " | ")
    return f"autograde failed: {detail[:300]}"


def _read_scores(groot: GradingRoot, job: Job) -> tuple[float, float, list[str]]:
    with nbg.gradebook(groot.db_url) as gb:
        sub = gb.find_submission(job.module.folder, job.student)
        nb_name = Path(job.module.notebook_name).stem
        subnb = gb.find_submission_notebook(nb_name, job.module.folder, job.student)
        failed = [
            f"{g.name} ({number(g.score)}/{number(g.max_score)})"
            for g in sorted(subnb.grades, key=lambda g: g.name)
            if g.max_score and g.score < g.max_score
        ]
        return float(sub.score), float(sub.max_score), failed

STOPPING = {"kernel_died", "notebook_timeout", "limit"}  # the run stopped early: "error"


def read_report(report: Path) -> dict:
    """What running the notebook gave (written by
    :class:`coursekit.grading.execution.limits.LimitedExecute`): limit ``events``, the
    ``verdicts`` of its locked cells, ``flags``; empty parts if it wrote nothing."""
    try:
        data = json.loads(report.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        data = {}
    if not isinstance(data, dict):
        data = {}
    return {"events": [e for e in data.get("events", []) if isinstance(e, dict) and "reason" in e],
            "verdicts": data.get("verdicts", {}) if isinstance(data.get("verdicts"), dict) else {},
            "flags": [str(f) for f in data.get("flags", [])],
            "tests": [str(g) for g in data.get("tests", [])]}


def _mark_withheld(report: Path, withhold: bool) -> None:
    try:
        data = json.loads(report.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return
    data["withhold"] = withhold
    report.write_text(json.dumps(data), encoding="utf-8")


def grade_one(groot: GradingRoot, job: Job) -> Result:
    """Grade one submission; never raises for a bad submission (the reason goes in the Result).

    Its kernel runs in the module's sandbox unless the grading root says otherwise
    (:mod:`coursekit.grading.execution.sandbox`); a sandbox that cannot start raises
    :class:`coursekit.grading.execution.sandbox.SandboxUnavailable`.
    """
    assignment = job.module.folder
    total = max_points(job.module.source_notebook)
    clear_job(groot, job)
    if not STUDENT_ID_RE.match(job.student):
        return Result(job.student, assignment, 0, total, "invalid",
                      f"student id {job.student!r} must be letters, digits, '.', '_' or '-'",
                      sandboxed=groot.sandbox)
    bad = precheck(job.path)
    if bad:
        _forget_submission(groot, job)
        return Result(job.student, assignment, 0, total, bad[0], bad[1],
                      sandboxed=groot.sandbox)
    dest = groot.submitted(job)
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(job.path, dest)
    stamp = job.path.parent / "timestamp.txt"  # the submission time, as nbgrader keeps it
    if stamp.is_file():
        shutil.copyfile(stamp, dest.parent / "timestamp.txt")
    cfg = groot.config
    report = groot.report(job)
    report.parent.mkdir(parents=True, exist_ok=True)
    cfg.LimitedExecute.report_file = str(report)
    cfg.LimitedExecute.source_notebook = str(job.module.source_notebook)
    # precheck made sure the submission is a notebook; both are read once, here
    submitted_nb = json.loads(dest.read_text(encoding="utf-8"))
    source_nb = json.loads(job.module.source_notebook.read_text(encoding="utf-8"))
    flags = review(submitted_nb, source_nb, job.module.name)
    restored_nb, restored = restore_locked_cells(submitted_nb, source_nb)
    if restored:
        dest.write_text(json.dumps(restored_nb, indent=1, ensure_ascii=False), encoding="utf-8")
        flags.append(f"test cells put back in place before grading: {', '.join(restored)}")
    server = kernelserver.serve(groot.course, job.module, groot.sandbox)
    result = nbg.run("autograde", cfg, assignment, job.student)
    ran = read_report(report)
    flags += [clean(f) for f in ran["flags"]]
    # what the notebook's code can shape (failure messages) waits for an instructor when
    # the seal saw tampering, or the source uses what tampering needs
    _mark_withheld(report, any(is_tampering(f, from_seal=True) for f in ran["flags"])
                   or any(is_tampering(f) for f in flags))
    left = server.take_leftovers() if server is not None else []
    if left:
        flags.append(f"left {len(left)} process(es) running after its notebook, stopped by "
                     f"the grader: {clean(', '.join(left[:3]))}")
    if not result.get("success") or not groot.autograded(job).is_file():
        reason = _failure_reason(result, result.get("log", ""))
        _forget_submission(groot, job)
        return Result(job.student, assignment, 0, total, "error", reason,
                      flagged="; ".join(flags), sandboxed=groot.sandbox)
    score, max_score, failed = _read_scores(groot, job)
    reason = ("all tests passed" if not failed else "failed: " + ", ".join(failed))
    status = "graded"
    for event in ran["events"]:
        reason += "; " + event["reason"]
        if event["kind"] in STOPPING:
            status = "error"
    out = Result(job.student, assignment, score, max_score, status, reason, failed=failed,
                 flagged="; ".join(flags), sandboxed=groot.sandbox)
    return out
