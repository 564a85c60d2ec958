"""Nothing lost: a grading process killed while it grades, then ``kill -9`` of the service
under load and a restart: every accepted submission is graded exactly once into the
gradebook (PostgreSQL), and ``course grade`` finds nothing left to grade."""

from __future__ import annotations

import json
import os
import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import servicetools as st
from sqlalchemy import create_engine, text

from coursekit import nbg
from coursekit.grading.grade import grade
from coursekit.grading.records.database import normalize

pytestmark = pytest.mark.slow
STUDENTS = [f"r{i}" for i in range(1, 7)]


def _rows(db_url: str) -> dict[int, dict[str, Any]]:
    engine = create_engine(normalize(db_url))
    try:
        with engine.connect() as conn:
            found = conn.execute(text("SELECT * FROM coursekit_service_attempts"))
            return {r.id: dict(r._mapping) for r in found}
    finally:
        engine.dispose()


def _until(what: str, check: Any, timeout: float = 240) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout} s: {what}")


def _grading_processes(pid: int) -> list[int]:
    """The service's grading processes (its children running the grading worker)."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            cmd = Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ")
            if b"coursekit.grading.dispatch.worker" in cmd:
                found.append(int(child))
    return found


def test_nothing_accepted_is_lost(pg: Any, tmp_path: Path) -> None:
    course = st.make_course(tmp_path / "course", """
[student_repository]
slug = "your-org/tinytorch"
through = "01"
""")
    db_url = pg.create_database("recovery_gradebook")
    grading = tmp_path / "grading"
    tokens = st.issue_tokens(course, grading, db_url, STUDENTS)
    most = st.points(course, "01_tensor")
    notebooks = {s: st.solved(course, "01_tensor") if i % 2 == 0 else
                 st.untouched(course, "01_tensor") for i, s in enumerate(STUDENTS)}
    first = st.ServiceProcess(course, grading, db_url, tmp_path / "first.log", workers=1)
    second = st.ServiceProcess(course, grading, db_url, tmp_path / "second.log", workers=1)
    try:
        first.start()
        accepted = {}
        for student in STUDENTS:
            reply = first.submit(tokens[student], "01_tensor", notebooks[student])
            assert reply.status == 202, reply.text
            accepted[student] = reply.json["attempt"]
        # a grading process killed while it grades: its submission is graded again
        _until("a submission being graded",
               lambda: any(r["state"] == "grading" for r in _rows(db_url).values()))
        assert first.proc is not None
        (worker,) = _until("the grading process", lambda: _grading_processes(first.proc.pid))
        os.kill(worker, signal.SIGKILL)
        # kill -9 of the service itself while it grades the rest
        _until("two graded", lambda: sum(r["state"] == "done"
                                         for r in _rows(db_url).values()) >= 2)
        first.kill()
        first.kill_group()
        before = _rows(db_url)
        assert sorted(before) == sorted(accepted.values())
        left = [i for i, r in before.items() if r["state"] != "done"]
        assert left, "the service finished everything before it was killed"
        second.start()
        results = {s: second.result(tokens[s], accepted[s]) for s in STUDENTS}
    finally:
        second.stop()
        first.kill_group()
    log = (tmp_path / "first.log").read_text() + (tmp_path / "second.log").read_text()
    assert "died" in log  # the grading process killed, as `course grade` reports it
    assert f"{len(left)} accepted submission(s) not graded" in log
    after = _rows(db_url)
    assert {r["state"] for r in after.values()} == {"done"}
    record = [json.loads(line) for line in (grading / "results.jsonl").read_text().splitlines()]
    graded = Counter(r["fingerprint"] for r in record)
    for student in STUDENTS:
        row = after[accepted[student]]
        assert graded[row["fingerprint"]] == 1, student  # graded once into the gradebook
        expected = most if notebooks[student] == st.solved(course, "01_tensor") else 0.0
        assert results[student]["score"] == expected, student
        with nbg.gradebook(normalize(db_url), "tinytorch") as gb:
            sub = gb.find_submission("01_tensor", student)
            assert float(sub.score) == expected and sub.timestamp == row["submitted_at"]
    rows = (grading / "grades.csv").read_text().splitlines()
    assert sum(1 for line in rows if ",01_tensor," in line and ",graded," in line) == 6
    said: list[str] = []
    grade(course, grading / "submissions", out=grading, workers=1, log=said.append)
    assert any("6 of 6 submission(s) unchanged" in line for line in said), said
