"""`course grade` over a term: bad input gets one message and exit 1, grades.csv always
holds the whole gradebook, one student can be regraded, Ctrl-C stops cleanly."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from coursekit.cli import main
from coursekit.course import Course


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _class(released: Course, subs: Path, students: list[str]) -> Path:
    src = released.root / "source_notebooks" / "01_demo" / "demo.ipynb"
    rel = released.root / "release" / "01_demo" / "demo.ipynb"
    for i, student in enumerate(students):
        (subs / student / "01_demo").mkdir(parents=True)
        shutil.copy(src if i % 2 == 0 else rel, subs / student / "01_demo" / "demo.ipynb")
    return subs


@pytest.mark.parametrize(("args", "message"), [
    (["--db-url", "not a url"], "--db-url not a url: not a database URL"),
    (["--db-url", "postgresql://ta:secret@127.0.0.1:PORT/grades"],
     "--db-url postgresql+psycopg://ta:***@127.0.0.1:PORT/grades: cannot open the database"),
    (["--db-url", "nosuchdb://x/y"], "--db-url nosuchdb://x/y: unknown database kind"),
    (["--db-url", "sqlite:////no/such/folder/g.db"], "the folder /no/such/folder does not exist"),
    (["--out", "FILE"], "--out FILE: not a folder"),
    (["--workers", "-1"], "--workers -1: must be 0"),
    (["--student", "zed"], "--student zed: no such student folder"),
    (["--module", "7"], "--module 7: no such module"),
    (["--workers", "many"], "argument --workers/-j: invalid int value: 'many'"),
])
def test_bad_input_one_message(course: Course, tmp_path: Path, capsys, args: list[str],
                               message: str) -> None:
    subs = tmp_path / "subs"
    (subs / "ada" / "01_demo").mkdir(parents=True)
    port = str(_closed_port())
    (tmp_path / "file").write_text("")
    fill = {"PORT": port, "FILE": str(tmp_path / "file")}
    args = [fill.get(a, a).replace("PORT", port) for a in args]
    out = tmp_path / "grading"
    code = main(["--root", str(course.root), "grade", "--submissions", str(subs),
                 *(["--out", str(out)] if "--out" not in args else []), *args])
    err = capsys.readouterr().err
    want = message.replace("PORT", port).replace("FILE", fill["FILE"])
    assert code == 1
    assert want in err and "Traceback" not in err and "secret" not in err, err
    assert not out.exists()  # nothing written before the input was checked


def test_missing_driver_is_named(course: Course, tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # import psycopg now fails
    (tmp_path / "subs" / "ada").mkdir(parents=True)
    code = main(["--root", str(course.root), "grade", "--submissions", str(tmp_path / "subs"),
                 "--db-url", "postgresql://ta@db.example/grades"])
    err = capsys.readouterr().err
    assert code == 1 and "the database driver 'psycopg' is not installed" in err, err
    assert "pip install -r requirements-postgresql.txt" in err and "Traceback" not in err


@pytest.mark.slow
def test_grades_csv_keeps_the_class_and_one_student_regrades(released: Course,
                                                            tmp_path: Path) -> None:
    subs = _class(released, tmp_path / "subs", ["ann", "bob", "cat"])
    # an invalid notebook: nbformat's message spans lines; grades.csv keeps one per row
    nb = json.loads((subs / "cat" / "01_demo" / "demo.ipynb").read_text())
    nb["cells"][0]["cell_type"] = "bogus"
    (subs / "cat" / "01_demo" / "demo.ipynb").write_text(json.dumps(nb))
    out = tmp_path / "grading"
    base = ["--root", str(released.root), "grade", "--submissions", str(subs), "--out",
            str(out), "--no-feedback", "-j", "0"]
    assert main(base) == 0
    first = list(csv.DictReader((out / "grades.csv").open()))
    assert [(r["student"], r["score"], r["status"]) for r in first] == [
        ("ann", "3", "graded"), ("bob", "0", "graded"), ("cat", "0", "invalid")]
    text = (out / "grades.csv").read_text()
    assert len(text.splitlines()) == 4  # no reason spills over lines
    # bob hands in the solution after all; only bob is graded again
    shutil.copy(released.root / "source_notebooks" / "01_demo" / "demo.ipynb",
                subs / "bob" / "01_demo" / "demo.ipynb")
    assert main([*base, "--student", "bob"]) == 0
    again = list(csv.DictReader((out / "grades.csv").open()))
    assert [(r["student"], r["score"], r["status"]) for r in again] == [
        ("ann", "3", "graded"), ("bob", "3", "graded"), ("cat", "0", "invalid")]
    assert again[0] == first[0] and again[2] == first[2]


@pytest.mark.slow
def test_ctrl_c_writes_grades_for_what_was_saved(released: Course, tmp_path: Path) -> None:
    students = [f"s{i:02d}" for i in range(6)]
    subs = _class(released, tmp_path / "subs", students)
    out = tmp_path / "grading"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "coursekit", "--root", str(released.root), "grade",
         "--submissions", str(subs), "--out", str(out), "--no-feedback", "-j", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
        start_new_session=True,  # its own process group, as a terminal's Ctrl-C reaches it
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 120
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("grade [1/") or time.monotonic() > deadline:
                break
        os.killpg(proc.pid, signal.SIGINT)
        rest, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    output = "".join(lines) + rest
    assert proc.returncode == 130, output
    assert "Traceback" not in output and "I/O operation on closed file" not in output, output
    assert "grade: interrupted:" in output and "not graded (" in output, output
    rows = list(csv.DictReader((out / "grades.csv").open()))
    saved = [r for r in rows if r["status"] == "graded"]
    waiting = [r for r in rows if r["status"] == "not graded"]
    assert len(saved) >= 1 and len(waiting) >= 1, rows
    assert len(saved) + len(waiting) == len(students), rows
    for row in saved:  # what was saved is right: even students handed in the solution
        assert row["score"] == ("3" if int(row["student"][1:]) % 2 == 0 else "0"), row
