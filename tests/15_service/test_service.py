"""The grading service over HTTP: ``course serve`` in a process of its own on a loopback
port, its gradebook on a real PostgreSQL server, tokens from ``course tokens``.

The course released through module 02; 01 was due yesterday (every 01 submission is a day
late: the late policy takes 10 % a started day) and 02 closed long ago; the best submission
counts; 3 submissions per student, module and hour; a queue of 3; notebooks up to 1 MB;
5 wrong tokens from an address. Scores are checked against the source notebook's points and
against ``course grade`` run on the files the service keeps (another grading root and
gradebook).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import servicetools as st
from sqlalchemy import create_engine, text

from coursekit import nbg
from coursekit.grading.grade import grade
from coursekit.grading.records.database import normalize

pytestmark = pytest.mark.slow

STUDENTS = ["ada", "ben", "cy", "dee", "eve", "fay", "gone", "hal", "ivy",
            *(f"b{i}" for i in range(1, 9))]


@pytest.fixture(scope="module")
def svc(pg: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    work = tmp_path_factory.mktemp("service")
    yesterday = (datetime.now(UTC) - timedelta(days=1)).replace(tzinfo=None, microsecond=0)
    course = st.make_course(work / "course", f"""
[student_repository]
slug = "your-org/tinytorch"
through = "02"

[due]
01_tensor = {yesterday.isoformat()}
02_activations = 2020-01-06T12:00:00

[late]
penalty_per_day = 10

[service]
url = "http://127.0.0.1:1"
counts = "best"
submissions_per_hour = 3
queue = 3
max_notebook_mb = 1
wrong_tokens = 5
""")
    db_url = pg.create_database("service_gradebook")
    grading = work / "grading"
    tokens = st.issue_tokens(course, grading, db_url, STUDENTS)
    tokens.update(st.issue_tokens(course, grading, db_url, [], "--instructor", "prof"))
    service = st.ServiceProcess(course, grading, db_url, work / "serve.log")
    service.start()
    try:
        yield {"course": course, "service": service, "tokens": tokens, "db_url": db_url,
               "grading": grading, "work": work}
    finally:
        service.stop()


def _graded(svc: dict[str, Any], student: str, nb: dict[str, Any] | bytes,
            module: str = "01_tensor") -> dict[str, Any]:
    service, token = svc["service"], svc["tokens"][student]
    reply = service.submit(token, module, nb)
    assert reply.status == 202, (reply.status, reply.text)
    return service.result(token, reply.json["attempt"])


def _gradebook_row(svc: dict[str, Any], student: str, module: str = "01_tensor") -> tuple:
    with nbg.gradebook(normalize(svc["db_url"]), "tinytorch") as gb:
        sub = gb.find_submission(module, student)
        return (float(sub.score) - float(sub.late_submission_penalty or 0), sub.timestamp)


def _attempt_rows(svc: dict[str, Any], student: str) -> list[dict[str, Any]]:
    engine = create_engine(normalize(svc["db_url"]))
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT * FROM coursekit_service_attempts WHERE "
                                     "student = :s ORDER BY id"), {"s": student})
            return [dict(r._mapping) for r in rows]
    finally:
        engine.dispose()


def test_graded_as_course_grade_grades_the_same_file(svc: dict[str, Any]) -> None:
    """A complete and a partial notebook, a day late: the service's score and failed tests
    are those `course grade` gives the files it keeps, and the gradebook holds them."""
    course = svc["course"]
    full = st.solved(course, "01_tensor")
    ada = _graded(svc, "ada", full)
    ben = _graded(svc, "ben", st.broken(full, "transpose"))
    most = st.points(course, "01_tensor")
    assert ada["state"] == "done" and ada["raw_score"] == most == ada["max_score"]
    assert ada["penalty"] > 0 and ada["score"] == most - ada["penalty"] and ada["late"]
    assert all(t["passed"] for t in ada["tests"])
    failed = {t["name"] for t in ben["tests"] if not t["passed"]}
    assert "tensor_test_transpose" in failed and ben["raw_score"] < most
    assert all(t["message"] for t in ben["tests"] if not t["passed"])
    assert ada["counts"] and ben["counts"]
    page = svc["service"].call("GET", ben["feedback"])  # failure messages: no hidden code
    assert page.status == 200 and "tensor_test_transpose" in page.text
    # the submission that counts is kept where `course grade --submissions` reads it
    batch = grade(course, svc["grading"] / "submissions", out=svc["work"] / "batch",
                  modules=["01"], workers=1, feedback=False, students=["ada", "ben"],
                  log=lambda line: None)
    theirs = {r.student: r for r in batch}
    for student, mine in (("ada", ada), ("ben", ben)):
        assert theirs[student].score == pytest.approx(mine["score"]), student
        assert theirs[student].penalty  # late there too
        assert {f.split(" (")[0] for f in theirs[student].failed} == \
            {t["name"] for t in mine["tests"] if not t["passed"]}, student
        score, stamp = _gradebook_row(svc, student)
        assert score == pytest.approx(mine["score"])
        assert stamp.isoformat(timespec="seconds") + "Z" == mine["submitted"]


def test_the_terminal_command(svc: dict[str, Any], tmp_path: Path) -> None:
    """`python -m tinytorch.submit NOTEBOOK` submits and prints the score and failures."""
    course = svc["course"]
    path = tmp_path / "tensor.ipynb"
    path.write_text(json.dumps(st.untouched(course, "01_tensor")), encoding="utf-8")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
           "TINYTORCH_SERVICE_URL": svc["service"].base,
           "TINYTORCH_TOKEN": svc["tokens"]["fay"]}
    done = subprocess.run([sys.executable, "-m", "tinytorch.submit", str(path), "--module",
                           "01_tensor"], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    (module,) = course.select(["01"])
    tests = [c for c in st.load(module.source_notebook)["cells"]
             if c.get("metadata", {}).get("nbgrader", {}).get("grade")]
    most = st.points(course, "01_tensor")
    assert re.search(rf"of 01_tensor by fay: 0 / {most:g}\b", done.stdout), done.stdout
    assert f"0 test(s) passed, {len(tests)} failed" in done.stdout, done.stdout
    assert "FAILED tensor_test_dtype" in done.stdout and "Feedback page: http" in done.stdout


def test_tokens_are_who_the_students_are(svc: dict[str, Any]) -> None:
    """Forged, missing and revoked tokens get 401 (and, from one address, 429 after five,
    while valid tokens from it get through);
    a token reads only its own student's results; the feedback page opens with its link
    only; an instructor's token submits nothing and a student's opens no status."""
    service, tokens, course = svc["service"], svc["tokens"], svc["course"]
    nb = json.dumps(st.untouched(course, "01_tensor")).encode()
    for bad in ("tt1.0123456789abcdef.nottherightsecret", "abc", tokens["ada"] + "x"):
        reply = service.submit(bad, "01_tensor", nb)
        assert reply.status == 401 and "Bearer" in reply.headers["www-authenticate"]
        assert "not valid" in reply.json["error"]
    assert service.call("GET", "/api/attempts").status == 401
    ada = service.call("GET", "/api/attempts", token=tokens["ada"]).json["attempts"]
    assert ada and all(a["module"] == "01_tensor" for a in ada)
    first = ada[0]["attempt"]
    mine = service.call("GET", f"/api/attempts/{first}", token=tokens["ada"])
    assert mine.status == 200 and mine.json["student"] == "ada"
    theirs = service.call("GET", f"/api/attempts/{first}", token=tokens["ben"])
    assert theirs.status == 404 and "ada" not in theirs.text
    ben_list = service.call("GET", "/api/attempts", token=tokens["ben"]).json["attempts"]
    assert first not in [a["attempt"] for a in ben_list]
    link = mine.json["feedback"]
    page = service.call("GET", link)
    assert page.status == 200 and "text/html" in page.headers["content-type"]
    assert "01_tensor" in page.text and "feedback" in page.text
    assert service.call("GET", link[:-3] + "abc").status == 404
    key = link.split("key=", 1)[1]  # the database alone opens no page: it keeps no key
    assert all(key not in str(row["feedback_key"]) for row in _attempt_rows(svc, "ada"))
    secret = svc["grading"] / "service" / "feedback-secret"
    folder = svc["grading"] / _attempt_rows(svc, "ada")[0]["folder"]
    for path in (secret, folder, folder / "tensor.ipynb", svc["grading"] / "service"):
        assert path.stat().st_mode & 0o077 == 0, path  # the owner's alone
    assert service.call("GET", f"/api/attempts/{first}/feedback").status == 404
    # revoked while the service runs: refused at once; a reissued one works
    assert service.call("GET", "/api/attempts", token=tokens["gone"]).status == 200
    done = subprocess.run(st.course_cmd(course, "tokens", "--grading", str(svc["grading"]),
                                        "--revoke", "gone"),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert service.call("GET", "/api/attempts", token=tokens["gone"]).status == 401
    new = st.issue_tokens(course, svc["grading"], svc["db_url"], ["gone"])["gone"]
    assert service.call("GET", "/api/attempts", token=new).status == 200
    # roles
    assert service.submit(tokens["prof"], "01_tensor", nb).status == 403
    assert service.call("GET", "/api/status", token=tokens["ada"]).status == 403
    # wrong tokens from one client address (behind the proxy): five, then it waits; a
    # valid token from the same address (a classmate behind the same NAT) gets through
    away = {"X-Forwarded-For": "198.51.100.7"}
    for _ in range(5):
        assert service.call("GET", "/api/attempts", token="tt1.ffffffffffffffff.x",
                            headers=away).status == 401
    blocked = service.call("GET", "/api/attempts", token="tt1.ffffffffffffffff.x",
                           headers=away)
    assert blocked.status == 429 and int(blocked.headers["retry-after"]) > 0
    for student in ("ada", "cy"):
        assert service.call("GET", "/api/attempts", token=tokens[student],
                            headers=away).status == 200


def test_bad_notebooks_get_one_line_and_their_status(svc: dict[str, Any]) -> None:
    service, tokens, course = svc["service"], svc["tokens"], svc["course"]
    token = tokens["eve"]
    cases = [
        ("01_tensor", b"", 400, "empty"),
        ("01_tensor", b"{not json", 400, "not valid JSON"),
        ("01_tensor", b'{"cells": 3}', 400, "not a valid notebook"),
        ("01_tensor", b"x" * (1024 * 1024 + 10), 413, "1 MB"),
        ("01_tensor", json.dumps(st.untouched(course, "02_activations")).encode(), 422,
         "02_activations"),
        ("01_tensor", json.dumps(_other_course_notebook()).encode(), 422,
         "not a notebook of this course"),
        ("03_layers", json.dumps(st.untouched(course, "03_layers")).encode(), 404,
         "not open for submission"),
        ("02_activations", json.dumps(st.untouched(course, "02_activations")).encode(), 403,
         "closed"),
    ]
    for module, body, status, says in cases:
        reply = service.submit(token, module, body)
        assert reply.status == status, (module, says, reply.status, reply.text)
        assert says in reply.json["error"] and "\n" not in reply.json["error"], reply.json
    other = service.submit(token, "01_tensor", st.untouched(course, "01_tensor"),
                           **{"X-Course": "another-org/another-course"})
    assert other.status == 422 and "another-org/another-course" in other.json["error"]
    assert service.call("GET", "/api/attempts", token=token).json["attempts"] == []


def _other_course_notebook() -> dict[str, Any]:
    import nbformat

    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("assert 1 + 1 == 2", metadata={"nbgrader": {
        "grade": True, "grade_id": "other_course_test", "locked": True, "points": 1,
        "schema_version": 3, "solution": False, "task": False}})
    nb.cells.append(cell)
    return json.loads(nbformat.writes(nb))


def test_cheap_refusals_come_before_the_notebook_is_read(svc: dict[str, Any]) -> None:
    """A closed module, a student whose notebooks were refused too often and a third
    upload at once with one token are answered as soon as the headers are in: the service
    does not wait for (or read) the notebook. Refused notebooks count: past 10 an hour
    (twice the hourly submissions, at least 10) the next is refused unread."""
    service, tokens = svc["service"], svc["tokens"]
    closed = st.send_part(service.port, st.post_head(
        "/api/submissions?module=02_activations", tokens["hal"], 500_000))
    with closed:
        status, got = st.answer(closed)
    assert status == 403 and b"closed" in got
    for i in range(10):
        reply = service.submit(tokens["hal"], "01_tensor", b"{not json %d" % i)
        assert reply.status == 400, reply.text
    unread = st.send_part(service.port, st.post_head("/api/submissions?module=01_tensor",
                                                     tokens["hal"], 500_000))
    with unread:
        status, got = st.answer(unread)
    assert status == 429 and b"10 of your notebooks were refused" in got
    assert int(re.search(rb"retry-after: (\d+)", got.lower()).group(1)) > 3000
    # two notebooks being sent with ivy's token: a third is refused at once
    path = "/api/submissions?module=01_tensor"
    sending = [st.send_part(service.port, st.post_head(path, tokens["ivy"], 500_000), b"{")
               for _ in range(2)]
    try:
        for _ in range(8):  # a whole (bad) notebook: read and refused, 400, until both
            time.sleep(0.5)  # uploads above are under way
            third = st.send_part(service.port, st.post_head(path, tokens["ivy"], 1), b"{")
            with third:
                status, got = st.answer(third)
            if status != 400:
                break
        assert status == 429 and b"being sent with your token" in got, got
    finally:
        for sock in sending:
            sock.close()
    assert service.call("GET", "/api/attempts", token=tokens["ivy"]).json["attempts"] == []


def test_deleted_test_cells_are_put_back_and_flagged(svc: dict[str, Any]) -> None:
    course = svc["course"]
    result = _graded(svc, "dee", st.without_cell(st.solved(course, "01_tensor"),
                                                 "tensor_test_dtype"))
    assert result["raw_score"] == st.points(course, "01_tensor")
    assert any("tensor_test_dtype" in note and "put back" in note for note in result["notes"])
    record = [json.loads(line) for line in
              (svc["grading"] / "results.jsonl").read_text().splitlines()]
    dee = [r for r in record if r["student"] == "dee"]
    assert dee and "put back" in dee[-1]["flagged"]


def test_the_best_counts_and_the_limit_per_hour(svc: dict[str, Any]) -> None:
    """counts = "best": a worse submission after a better one is graded and shown, and the
    better one is what the gradebook and the submissions folder hold; the same notebook again
    counts nothing; a fourth submission within the hour is refused until one leaves."""
    service, token, course = svc["service"], svc["tokens"]["cy"], svc["course"]
    full = st.solved(course, "01_tensor")
    best = _graded(svc, "cy", full)
    worse = _graded(svc, "cy", st.broken(full, "reshape"))
    assert worse["score"] < best["score"] and not worse["counts"]
    assert f"Submission {best['attempt']}" in worse["counting"]
    listed = service.call("GET", "/api/attempts", token=token).json["attempts"]
    assert [a["counts"] for a in listed] == [True, False]
    score, stamp = _gradebook_row(svc, "cy")
    assert score == pytest.approx(best["score"])
    assert stamp.isoformat(timespec="seconds") + "Z" == best["submitted"]
    kept = svc["grading"] / "submissions" / "cy" / "01_tensor" / "tensor.ipynb"
    assert json.loads(kept.read_text()) == full
    again = service.submit(token, "01_tensor", st.broken(full, "reshape"))
    assert again.status == 200 and again.json["attempt"] == worse["attempt"]
    assert "not counted again" in again.json["again"]
    third = service.submit(token, "01_tensor", st.with_code(full, "# one more look"))
    assert third.status == 202
    fourth = service.submit(token, "01_tensor", st.with_code(full, "# and another"))
    assert fourth.status == 429, fourth.text
    assert "3 submissions of 01_tensor an hour" in fourth.json["error"]
    assert 3000 < int(fourth.headers["retry-after"]) <= 3600
    service.result(token, third.json["attempt"])


def test_a_second_submission_waits_for_the_first(svc: dict[str, Any]) -> None:
    service, token, course = svc["service"], svc["tokens"]["eve"], svc["course"]
    full = st.solved(course, "01_tensor")
    first = service.submit(token, "01_tensor", st.broken(full, "sum"))
    second = service.submit(token, "01_tensor", full)
    assert first.status == second.status == 202
    assert second.json["state"] == "queued"
    results = [service.result(token, r.json["attempt"]) for r in (first, second)]
    assert [r["state"] for r in results] == ["done", "done"]
    rows = {r["id"]: r for r in _attempt_rows(svc, "eve")}
    one, two = rows[first.json["attempt"]], rows[second.json["attempt"]]
    assert two["started_at"] >= one["graded_at"]  # one at a time per student and module


def test_an_overload_burst_is_told_when_to_retry(svc: dict[str, Any],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Eight students at once on a queue of 3 and 2 grading processes: the overflow gets
    503 with Retry-After; a Submit cell refused that way waits as asked and gets its
    result; every accepted submission is graded."""
    from tinytorch import submit as client

    service, tokens, course = svc["service"], svc["tokens"], svc["course"]
    full = st.solved(course, "01_tensor")
    replies: dict[str, st.Reply] = {}

    def send(student: str) -> None:
        replies[student] = service.submit(tokens[student], "01_tensor",
                                          st.with_code(full, f"# by {student}"))

    burst = [f"b{i}" for i in range(1, 8)]
    threads = [threading.Thread(target=send, args=(s,)) for s in burst]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # one more, as the Submit cell sends it, while the queue is still full
    monkeypatch.setenv(client.URL_ENV, service.base)
    waits: list[float] = []
    said: list[str] = []

    class Collect(client.Reporter):
        def status(self, text: str) -> None:
            said.append(text)

        def error(self, text: str) -> None:
            said.append("ERROR " + text)

        def result(self, data: dict[str, Any], url: str) -> None:
            said.append(client.result_text(data, url))

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        time.sleep(seconds)

    data = json.dumps(st.with_code(full, "# by b8")).encode()
    late = client.submit(data, "01_tensor", Collect(), lambda: None, sleep, token=tokens["b8"])
    statuses = sorted(r.status for r in replies.values())
    refused = [r for r in replies.values() if r.status == 503]
    assert refused, statuses
    assert set(statuses) <= {202, 503} and statuses.count(202) >= 3
    for reply in refused:
        assert int(reply.headers["retry-after"]) >= 1 and "busy" in reply.json["error"]
    assert late is not None and late["state"] == "done", said
    assert waits and any("busy" in line and "trying again" in line for line in said), said
    for student, reply in replies.items():
        if reply.status == 202:
            assert service.result(tokens[student], reply.json["attempt"])["state"] == "done"


def test_odd_input_gets_a_clear_answer(svc: dict[str, Any]) -> None:
    """Odd attempt numbers and feedback keys get 404, a notebook nested too deeply 400, a
    module name with a line break is logged on one line: no 500, nothing in the errors the
    instructor sees."""
    service, token = svc["service"], svc["tokens"]["eve"]
    for path, who in (("/api/attempts/99999999999999999999999", token),
                      ("/api/attempts/-1", token), ("/api/attempts/1%C3%A9", token),
                      ("/api/attempts/99999999999999999999999/feedback?key=abc", None),
                      ("/api/attempts/1/feedback?key=%C3%A9%C3%A9", None),
                      ("/api/attempts/1/feedback?key=" + "a" * 65, None)):
        reply = service.call("GET", path, token=who)
        assert reply.status == 404 and "\n" not in reply.json["error"], (path, reply.text)
    deep = service.submit(token, "01_tensor", b"[" * 100_000 + b"]" * 100_000)
    assert deep.status == 400 and "nested too deeply" in deep.json["error"], deep.text
    forged = "01_tensor%0A2026-01-01 00:00:00 serve: #77 eve 01_tensor: 14/14 graded"
    assert service.call("POST", f"/api/submissions?module={forged.replace(' ', '%20')}",
                        token=token,
                        body=b"{}").status == 404
    lines = service.log.read_text(encoding="utf-8").splitlines()
    assert not [line for line in lines if line.startswith("2026-01-01 00:00:00 serve: #77")]
    assert any("'01_tensor\\n2026-01-01" in line for line in lines)
    status = service.call("GET", "/api/status", token=svc["tokens"]["prof"]).json
    assert status["last_errors"] == [] and status["request_errors"] == []


def test_the_instructor_sees_it_run(svc: dict[str, Any]) -> None:
    service, prof = svc["service"], svc["tokens"]["prof"]
    status = service.call("GET", "/api/status", token=prof)
    assert status.status == 200
    data = status.json
    assert data["workers"] == 2 and data["queue"] == 0 and data["queue_limit"] == 3
    assert data["graded"] >= 10 and data["failed"] == 0 and data["last_errors"] == []
    assert 0 < data["latency_seconds"]["p50"] <= data["latency_seconds"]["p95"]
    report = service.call("GET", "/api/report", token=prof)
    assert report.status == 200 and "text/html" in report.headers["content-type"]
    assert "01_tensor" in report.text and "<html" in report.text.lower()
    csvs = sorted(set(re.findall(r'href="(report-[a-z0-9_-]+\.csv)"', report.text)))
    if csvs:
        assert service.call("GET", f"/api/report/{csvs[0]}", token=prof).status == 200
    assert service.call("GET", "/api/report", token=svc["tokens"]["ada"]).status == 403
    assert service.call("GET", "/api/report/..%2Fgradebook.db", token=prof).status == 404


def test_one_log_line_per_submission(svc: dict[str, Any]) -> None:
    log = svc["service"].log.read_text(encoding="utf-8")
    graded = re.findall(r"serve: #(\d+) \S+ \S+: [\d.]+/[\d.]+ ", log)
    accepted = [r["id"] for s in STUDENTS for r in _attempt_rows(svc, s)]
    assert sorted(int(g) for g in graded) == sorted(accepted)


def test_no_answer_carries_hidden_test_code(svc: dict[str, Any]) -> None:
    """Every answer the service gave in this file (results, failure messages, feedback
    pages, refusals) holds no line of any module's hidden tests (but those the submitted
    notebooks hold themselves: a feedback page shows the student's own code)."""
    own = b"\n".join(svc["service"].sent).decode("utf-8", errors="replace")
    hidden = {line for line in st.hidden_lines(svc["course"]) if json.dumps(line)[1:-1]
              not in own}
    assert len(hidden) > 20
    replies = svc["service"].replies
    assert len(replies) > 50 and any("text/html" in r.headers.get("content-type", "")
                                     for r in replies)
    for reply in replies:
        shown = st.shown_text(reply)
        leaked = [line for line in hidden if line in shown]
        assert not leaked, leaked[:3]
