"""A grading root keeps its gradebook: the first ``course grade`` records it (without a
password), later commands use it, another ``--db-url`` is refused with both named unless
``--switch-gradebook``; a PostgreSQL password comes from PGPASSWORD or the password file,
and no file the course writes holds it (slow: grades one notebook per run)."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
from termtools import Backend, hand_in

from coursekit.cli import main
from coursekit.course import Course
from coursekit.grading.records.root import recorded_gradebook

pytestmark = pytest.mark.slow


def grade_cli(course: Course, subs: Path, root: Path, *args: str) -> int:
    return main(["--root", str(course.root), "grade", "--submissions", str(subs), "--out",
                 str(root), "-j", "0", "--no-feedback", "-m", "01", *args])


def test_a_grading_root_keeps_its_gradebook(course: Course, backend: Backend, tmp_path: Path,
                                            capfd: pytest.CaptureFixture[str]) -> None:
    subs, root = tmp_path / "subs", backend.root
    hand_in(course, subs, "ada", "01_demo")
    assert grade_cli(course, subs, root, *backend.args()) == 0
    kept = recorded_gradebook(root)
    assert kept is not None and kept.endswith(backend.read_url.split("//", 1)[1])
    capfd.readouterr()
    # the same command without --db-url grades into the gradebook the root keeps
    hand_in(course, subs, "bo", "01_demo", solved=False)
    assert grade_cli(course, subs, root) == 0
    out = capfd.readouterr().out
    assert recorded_gradebook(root) == kept
    if backend.kind == "postgresql":
        assert not (root / "gradebook.db").exists()  # no SQLite file was made on the side
    rows = {r["student"]: r["score"] for r in csv.DictReader((root / "grades.csv").open())}
    assert rows == {"ada": "3", "bo": "0"}, out
    # another gradebook is refused, both named, and nothing is written
    other = tmp_path / "other.db"
    code = grade_cli(course, subs, root, "--db-url", f"sqlite:///{other}")
    err = capfd.readouterr().err
    assert code == 1 and len(err.strip().splitlines()) == 1, err
    assert f"sqlite:///{other}" in err and kept.split("@")[-1] in err, err
    assert "--switch-gradebook" in err and "Traceback" not in err
    assert not other.exists() and recorded_gradebook(root) == kept
    code = main(["--root", str(course.root), "export", "--format", "csv", "--grading",
                 str(root), "--db-url", f"sqlite:///{other}"])
    err = capfd.readouterr().err
    assert code == 1 and "keeps the gradebook" in err and not other.exists(), err
    assert grade_cli(course, subs, root, "--switch-gradebook") == 1
    assert "--switch-gradebook: give the gradebook to switch to with --db-url" in \
        capfd.readouterr().err
    # told to, it switches: the new gradebook is the root's from now on
    assert grade_cli(course, subs, root, "--db-url", f"sqlite:///{other}",
                     "--switch-gradebook") == 0
    assert "switches its gradebook" in capfd.readouterr().out
    assert recorded_gradebook(root) == f"sqlite:///{other}" and other.is_file()
    assert grade_cli(course, subs, root) == 0
    assert recorded_gradebook(root) == f"sqlite:///{other}"


def _nbgrader_export(root: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    bindir = Path(sys.executable).parent
    return subprocess.run([str(bindir / "nbgrader"), "export", "--to", "nbgrader.csv"],
                          cwd=root, capture_output=True, text=True, timeout=120,
                          env={**env, "PATH": f"{bindir}{os.pathsep}{env['PATH']}"})


def _files_holding(folder: Path, secret: str) -> list[str]:
    return [str(p) for p in folder.rglob("*")
            if p.is_file() and secret.encode() in p.read_bytes()]


def test_the_password_stays_out_of_every_file(course: Course, pg, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch,
                                              capfd: pytest.CaptureFixture[str]) -> None:
    subs, root = tmp_path / "subs", tmp_path / "grading"
    hand_in(course, subs, "ada", "01_demo")
    url = pg.create_database("password_case")
    with_password = url.replace("postgres@", f"postgres:{pg.password}@")
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.pgpass of the machine's user
    monkeypatch.delenv("PGPASSWORD", raising=False)
    monkeypatch.delenv("PGPASSFILE", raising=False)
    # without a password anywhere the server cannot be opened, and the message says where
    # the password belongs
    assert grade_cli(course, subs, root, "--db-url", url) == 1
    err = capfd.readouterr().err
    assert "PGPASSWORD" in err and "~/.pgpass" in err and not root.exists(), err
    # a password in the URL serves this command only
    assert grade_cli(course, subs, root, "--db-url", with_password) == 0
    out = capfd.readouterr().out
    assert "written nowhere" in out and pg.password not in out
    assert _files_holding(root, pg.password) == []
    assert recorded_gradebook(root).endswith(url.split("//", 1)[1])
    # later commands (and nbgrader's tools) take it from PGPASSWORD, or the password file
    env = {k: v for k, v in os.environ.items() if k not in ("PGPASSWORD", "PGPASSFILE")}
    assert _nbgrader_export(root, env).returncode != 0
    assert _nbgrader_export(root, {**env, "PGPASSWORD": pg.password}).returncode == 0
    pgpass = tmp_path / ".pgpass"
    pgpass.write_text(f"127.0.0.1:{pg.port}:password_case:postgres:{pg.password}\n")
    pgpass.chmod(0o600)
    done = _nbgrader_export(root, env)  # HOME is tmp_path: libpq reads its .pgpass
    assert done.returncode == 0, done.stderr
    assert [r["student_id"] for r in csv.DictReader((root / "nbgrader.csv").open())] == ["ada"]
    pgpass.unlink()
    code = main(["--root", str(course.root), "export", "--format", "csv", "--grading",
                 str(root)])
    err = capfd.readouterr().err
    assert code == 1 and "PGPASSWORD" in err and pg.password not in err, err
    monkeypatch.setenv("PGPASSWORD", pg.password)
    assert grade_cli(course, subs, root) == 0
    # a grading root written before the password was kept out of it loses it at the next run
    config = root / "nbgrader_config.py"
    config.write_text(config.read_text().replace(url.split("//", 1)[1],
                                                 with_password.split("//", 1)[1]))
    assert pg.password in config.read_text()
    capfd.readouterr()
    assert grade_cli(course, subs, root) == 0
    assert "taken out" in capfd.readouterr().out
    assert _files_holding(root, pg.password) == []
