"""Grading on a Dask cluster: the scheduler's address checked; workers refused for their
versions; the scheduler lost mid-run, and the same command again grading only what is
missing (slow ones start the real ``dask scheduler`` and ``dask worker`` commands on
127.0.0.1, each worker isolated as a machine of its own: see daskcluster.py).

That the cluster grades the example class and the hostile corpus as local grading does,
with a worker killed mid-run, is in test_grading.py (it reuses the corpus graded there).
"""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from coursekit import nbg
from coursekit.cli import main
from coursekit.course import Course, CourseError
from coursekit.grading.dispatch.cluster import Cluster
from coursekit.grading.records.results import max_points
from coursekit.grading.dispatch.station import versions

sys.path.insert(0, str(Path(__file__).resolve().parent))
from daskcluster import DaskCluster  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples" / "submissions"
PROGRESS = re.compile(r"^grade \[\d+/(\d+)\] (\S+) (\S+): ")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def graded_in(output: str) -> list[tuple[str, str]]:
    """(student, module) of every progress line."""
    return [(m.group(2), m.group(3)) for line in output.splitlines()
            if (m := PROGRESS.match(line))]


@pytest.mark.parametrize(("args", "message"), [
    (["--scheduler", "localhost:8786"],
     "--scheduler localhost:8786: expected tcp://HOST:PORT, the address `dask scheduler` "
     "prints"),
    (["--scheduler", "tcp://127.0.0.1:8786", "--workers", "2"],
     "--workers 2 and --scheduler tcp://127.0.0.1:8786: give one of them"),
])
def test_scheduler_arguments_checked(args: list[str], message: str, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--root", str(REPO), "grade", "--submissions", str(EXAMPLES),
                 "--out", str(tmp_path / "g"), *args])
    err = capsys.readouterr().err
    assert code == 1 and message in err and "Traceback" not in err, err
    assert not (tmp_path / "g").exists()


def test_unreachable_scheduler_named() -> None:
    port = free_port()  # nothing listens there
    with pytest.raises(CourseError, match=rf"--scheduler tcp://127.0.0.1:{port}: cannot reach "
                                          "the Dask scheduler"):
        Cluster(f"tcp://127.0.0.1:{port}", connect_timeout=3)


@pytest.mark.slow
def test_workers_with_other_versions_are_refused(tmp_path: Path,
                                                 tmp_path_factory: pytest.TempPathFactory,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """A worker whose environment holds another NumPy (its distribution's metadata says
    1.26.4) is refused, with the difference named; with no other worker, nothing is
    graded."""
    out = tmp_path / "grading"
    args = ["--root", str(REPO), "grade", "--submissions", str(EXAMPLES), "--out", str(out),
            "-m", "01", "-s", "ada_complete", "--no-feedback"]
    with DaskCluster(tmp_path / "cluster", hide=[REPO, tmp_path_factory.getbasetemp()]) as dc:
        fake = dc.folder / "odd" / "site" / "numpy-1.26.4.dist-info"
        fake.mkdir(parents=True)
        (fake / "METADATA").write_text("Metadata-Version: 2.1\nName: numpy\nVersion: 1.26.4\n")
        dc.start_scheduler()
        dc.start_worker("odd", env={"PYTHONPATH": str(fake.parent)})
        dc.start_worker("good")
        dc.wait_for_workers(2)
        code = main([*args, "--scheduler", dc.address])
        first = capsys.readouterr()
        want = f"it differs from the instructor's machine: NumPy 1.26.4 (the instructor has " \
               f"{versions()['NumPy']})"
        assert code == 0, first.err
        refused = [line for line in first.out.splitlines() if " refused: " in line]
        assert len(refused) == 1 and refused[0].endswith(want), first.out
        assert graded_in(first.out) == [("ada_complete", "01_tensor")]
        rows = list(csv.DictReader((out / "grades.csv").open()))
        source = json.loads((REPO / "source_notebooks" / "01_tensor" / "tensor.ipynb").read_text())
        full = sum(c["metadata"].get("nbgrader", {}).get("points", 0) for c in source["cells"])
        assert [(r["student"], float(r["score"]), r["status"]) for r in rows] == [
            ("ada_complete", full, "graded")]  # the complete example earns every point
        record = (out / "results.jsonl").read_text()
        dc.kill("good")
        code = main([*args, "--scheduler", dc.address, "--regrade"])
        second = capsys.readouterr()
    assert code == 1
    assert "no Dask worker can grade: tcp://" in second.err and want in second.err, second.err
    assert "Traceback" not in second.err
    assert graded_in(second.out) == []
    assert (out / "results.jsonl").read_text() == record  # nothing graded, nothing recorded


def run_course(cmd: list[str], on_line: Callable[[str], None],
               timeout: float) -> tuple[int, str]:
    """Run ``course`` as an instructor's terminal or a log would (its output a pipe, no
    PYTHONUNBUFFERED): ``on_line`` sees each line as it is printed; killed after
    ``timeout`` seconds. The exit code and everything printed."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=env)
    watchdog = threading.Timer(timeout, proc.kill)
    watchdog.start()
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            on_line(line)
        code = proc.wait()
    finally:
        watchdog.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    output = "".join(lines)
    assert code != -signal.SIGKILL, f"course grade did not finish within {timeout} s:\n{output}"
    return code, output


@pytest.mark.slow
def test_lost_scheduler_then_the_same_command_grades_what_is_missing(
        tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    port = free_port()
    out = tmp_path / "grading"
    cmd = [sys.executable, "-m", "coursekit", "--root", str(REPO), "grade", "--submissions",
           str(EXAMPLES), "--out", str(out), "-m", "01", "-m", "02", "--no-feedback",
           "--scheduler", f"tcp://127.0.0.1:{port}"]
    hide = [REPO, tmp_path_factory.getbasetemp()]
    with DaskCluster(tmp_path / "cluster", hide=hide) as dc:
        dc.start_scheduler(port)
        dc.start_worker("w1")
        dc.wait_for_workers(1)
        killed: list[str] = []

        def kill_scheduler(line: str) -> None:
            if line.startswith("grade [2/") and not killed:
                killed.append(line)
                dc.kill("scheduler")

        code, output = run_course(cmd, kill_scheduler, 180)
    assert killed and code == 1, output
    assert f"course grade: error: lost the Dask scheduler at tcp://127.0.0.1:{port}" in output
    assert "Traceback" not in output and "not graded (" in output, output
    first = graded_in(output)
    assert 2 <= len(first) < 8, output
    # every result that arrived is in the gradebook and grades.csv; the rest is named
    rows = {(r["student"], r["assignment"]): r for r in csv.DictReader((out / "grades.csv").open())}
    assert len(rows) == 8
    with nbg.gradebook(f"sqlite:///{out / 'gradebook.db'}", "tinytorch") as gb:
        for key in first:
            assert rows[key]["status"] != "not graded", rows[key]
            if rows[key]["status"] == "graded":
                gb.find_submission(key[1], key[0])
    assert sum(r["status"] == "not graded" for r in rows.values()) == 8 - len(first)
    # the same command again, on a cluster at the same address, grades only what is
    # missing; its only worker is lost after the first result, and a new one takes over
    # (Dask does not give a waiting task to a worker that can grade only once it has
    # joined: the submissions waiting are sent again)
    with DaskCluster(tmp_path / "cluster2", hide=hide) as dc:
        dc.start_scheduler(port)
        dc.start_worker("w2")
        dc.wait_for_workers(1)

        def replace_worker(line: str) -> None:
            if line.startswith("grade [1/") and "w2" in dc.procs:
                dc.kill("w2")
                dc.start_worker("w3")

        code, output = run_course(cmd, replace_worker, 300)
    again = subprocess.CompletedProcess(cmd, code, output, "")
    assert again.returncode == 0, again.stdout
    assert len(re.findall(r"Dask worker tcp://\S+ ready", again.stdout)) == 2, again.stdout
    # w2 died grading a submission, holding the answer of one it had graded, or between two
    # (which of these depends on the moment, so it is not checked): nothing is lost either way
    assert "Traceback" not in again.stdout, again.stdout
    assert f"{len(first)} of 8 submission(s) unchanged" in again.stdout, again.stdout
    second = graded_in(again.stdout)
    assert sorted(first + second) == sorted(rows), again.stdout
    rows = {(r["student"], r["assignment"]): r for r in csv.DictReader((out / "grades.csv").open())}
    # the example class (examples/README.md): ada solved everything (full marks, from the
    # source notebook's points), ben handed in the release notebooks (0), cy every other
    # solution region (something in between), dee's 01 notebook is cut short (not JSON)
    full = {m.folder: max_points(m.source_notebook) for m in Course(REPO).modules()}
    for module in ("01_tensor", "02_activations"):
        assert (float(rows[("ada_complete", module)]["score"]), rows[("ada_complete", module)]
                ["status"]) == (full[module], "graded")
        assert (rows[("ben_blank", module)]["score"], rows[("ben_blank", module)]["status"]) \
            == ("0", "graded")
        assert rows[("cy_partial", module)]["status"] == "graded"
        assert 0 <= float(rows[("cy_partial", module)]["score"]) < full[module]
    assert rows[("dee_corrupt", "01_tensor")]["status"] == "corrupt"
    assert float(rows[("dee_corrupt", "02_activations")]["score"]) == full["02_activations"]


@pytest.mark.slow
def test_losing_the_only_worker_is_said_and_a_new_one_takes_over(
        tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    """With no worker left that can grade, course grade says so (and how long it waits) at
    once, instead of waiting in silence; a worker that joins then grades the rest."""
    port = free_port()
    out = tmp_path / "grading"
    cmd = [sys.executable, "-m", "coursekit", "--root", str(REPO), "grade", "--submissions",
           str(EXAMPLES), "--out", str(out), "-m", "01", "--no-feedback",
           "--scheduler", f"tcp://127.0.0.1:{port}"]
    with DaskCluster(tmp_path / "cluster", hide=[REPO, tmp_path_factory.getbasetemp()]) as dc:
        dc.start_scheduler(port)
        dc.start_worker("w1")
        dc.wait_for_workers(1)
        seen: list[str] = []

        def on_line(line: str) -> None:
            if line.startswith("grade [1/") and "w1" in dc.procs:
                dc.kill("w1")
            if "no Dask worker can grade now" in line and not seen:
                seen.append(line)
                dc.start_worker("w2")

        code, output = run_course(cmd, on_line, 300)
    assert code == 0, output
    assert seen and "waiting up to" in seen[0] and f"dask worker tcp://127.0.0.1:{port}" \
        in seen[0], output
    rows = list(csv.DictReader((out / "grades.csv").open()))
    assert len(rows) == 4 and all(r["status"] != "not graded" for r in rows), rows
