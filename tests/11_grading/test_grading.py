"""Grading a class: the hostile corpus, parallel == serial, a worker killed mid-run (slow).

The corpus (tests/11_grading/corpus.py, module 02) is graded once, with 2 workers, in a
module-scoped fixture; each expected score is written next to its submission there.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from coursekit.course import Course
from coursekit.grading.grade import grade
from coursekit.grading.records.results import Job
from coursekit.grading.dispatch.bundle import add_gradebook, write_bundle
from coursekit.grading.records import deadlines
from coursekit.grading.records.gradebook import make_template
from coursekit.grading.dispatch.jobs import answer_store
from coursekit.grading.dispatch.pool import Pool
from coursekit.grading.records.root import prepare_root
import shutil  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import corpus  # noqa: E402

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
HONEST = ("honest_full", "honest_blank", "honest_partial", "honest_warning")


def cell_scores(db_url: str, students: list[str]) -> dict[tuple[str, str], float | None]:
    """(student, grade cell) -> score, from an nbgrader gradebook."""
    from nbgrader.api import Gradebook, MissingEntry

    out: dict[tuple[str, str], float | None] = {}
    with Gradebook(db_url) as gb:
        for student in students:
            try:
                nb = gb.find_submission_notebook("activations", corpus.MODULE, student)
            except MissingEntry:
                out[(student, "-")] = None
                continue
            for g in nb.grades:
                out[(student, g.name)] = g.score
    return out


@pytest.fixture(scope="module")
def course() -> Course:
    return Course(REPO)


SECRET = "s3cret-of-the-instructor-41c9"
#: Variables of the instructor's shell a kernel must never see (names a filter on prefixes
#: such as JPY_ or NBGRADER_ would let through).
SECRET_VARS = ("NBGRADER_DB_PASSWORD", "JPY_API_TOKEN", "COURSEKIT_SECRET", "AWS_SECRET_KEY")


class Listener:
    """A TCP server on the grading machine's loopback that records who connected."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.received: list[bytes] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(2)
                try:
                    self.received.append(conn.recv(100) or b"(connected)")
                except OSError:
                    self.received.append(b"(connected)")

    def close(self) -> None:
        self.stop.set()
        self.thread.join()
        self.sock.close()


@contextmanager
def secrets_in_environment() -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in SECRET_VARS}
    os.environ.update({k: SECRET for k in SECRET_VARS})
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def file_digests(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def graded(course: Course, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    subs = tmp_path_factory.mktemp("corpus")
    out = tmp_path_factory.mktemp("grading")
    listener = Listener()
    targets = corpus.Targets(course.root, out, subs, listener.port, SECRET)
    cases = corpus.write(course, subs, targets)
    before = file_digests(subs)
    lines: list[str] = []
    try:
        with secrets_in_environment():
            results = grade(course, subs, out=out, modules=[corpus.MODULE], workers=2,
                            overrides=corpus.LIMITS, log=lines.append)
    finally:
        listener.close()
    rows = {r["student"]: r for r in csv.DictReader((out / "grades.csv").open())}
    yield {"cases": {c.student: c for c in cases}, "subs": subs, "out": out, "log": lines,
           "results": {r.student: r for r in results}, "rows": rows, "targets": targets,
           "listener": listener, "before": before}


def test_corpus_scores(graded: dict) -> None:
    rows = graded["rows"]
    assert set(rows) == set(graded["cases"])
    wrong = corpus.mismatches(rows, graded["cases"])
    assert not wrong, "\n".join(wrong)


def hidden_and_solution_lines(course: Course) -> tuple[list[str], list[str]]:
    """Every hidden-test line of every module, and module 02's solution lines."""
    from coursekit.leaks import secrets_of

    hidden: list[str] = []
    solution: list[str] = []
    for module in course.modules():
        found = secrets_of(json.loads(module.source_notebook.read_text(encoding="utf-8")))
        hidden += list(found.hidden)
        if module.folder == corpus.MODULE:
            solution += list(found.solution)
    return hidden, solution


def test_attacks_leave_no_trace(graded: dict, course: Course) -> None:
    """In the sandbox every attack of the corpus fails: nothing stolen reaches a student,
    nothing is changed or planted, no connection is made."""
    t: corpus.Targets = graded["targets"]
    attackers = [s for s in graded["cases"] if s.startswith("attack_")]
    assert len(attackers) == 7
    assert graded["listener"].received == []
    planted = [p for root in (t.course_root, t.grading_root, t.submissions)
               for p in root.rglob(t.planted)]
    planted += [p for p in (Path("/tmp") / t.planted, Path.home() / t.planted) if p.exists()]
    assert planted == []
    assert file_digests(graded["subs"]) == graded["before"]  # the victim's file untouched
    assert float(graded["rows"][t.victim]["score"]) == corpus.TOTAL
    hidden, solution = hidden_and_solution_lines(course)
    leaks = []
    for folder in (graded["out"] / "feedback").iterdir():
        for path in folder.rglob("*"):
            if not path.is_file():
                continue
            text = path.read_text(errors="replace")
            if path.name.startswith("loot-"):
                leaks.append(f"{path}: a file the kernel wrote reached the feedback")
            if SECRET in text:
                leaks.append(f"{path}: the instructor's secret")
            lines = hidden + (solution if folder.name.startswith("attack_") else [])
            found = [line for line in lines if line.strip() and line.strip() in text]
            if found:
                leaks.append(f"{path}: {found[0]!r}")
    assert not leaks, "\n".join(leaks)
    # what the attacks printed is in their autograded notebooks: nothing stolen there either
    for student in attackers:
        nb = graded["out"] / "autograded" / student / corpus.MODULE / "activations.ipynb"
        outputs = json.dumps([c.get("outputs", []) for c in json.loads(nb.read_text())["cells"]])
        assert SECRET not in outputs, (student, outputs[:500])
        found = [line for line in hidden if len(line.strip()) > 20 and line.strip() in outputs]
        assert not found, (student, found[:3])


def test_attacks_are_real_without_the_sandbox(course: Course, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """The same attacks graded with --no-sandbox, on a scratch copy of the course: each one
    works there, so the test above would fail if the sandbox did not stop them."""
    fake_course = tmp_path / "course"
    (fake_course / "source_notebooks").mkdir(parents=True)
    src = course.root / "source_notebooks" / corpus.MODULE
    (fake_course / "source_notebooks" / corpus.MODULE).symlink_to(src)
    subs, out, home = tmp_path / "subs", tmp_path / "out", tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    listener = Listener()
    targets = corpus.Targets(fake_course, out, subs, listener.port, SECRET, victim="victim")
    cases = {c.student: c for c in corpus.write(course, subs, targets)
             if c.student.startswith("attack_") or c.student == "honest_full"}
    for student in list(os.listdir(subs)):
        if student not in cases:
            shutil.rmtree(subs / student)
    (subs / "honest_full").rename(subs / "victim")
    victim_before = file_digests(subs / "victim")
    try:
        with secrets_in_environment():
            grade(course, subs, out=out, modules=[corpus.MODULE], workers=0,
                  overrides=corpus.LIMITS, log=lambda s: None, sandbox=False)
    finally:
        listener.close()
        (Path("/tmp") / targets.planted).unlink(missing_ok=True)
    rows = {r["student"]: r for r in csv.DictReader((out / "grades.csv").open())}
    assert all(r["sandboxed"] == "no" for r in rows.values())
    # the forge reached the course's gradebook and wrote manual scores of 100 into it
    from nbgrader.api import Gradebook

    with Gradebook("sqlite:///" + str(out / "gradebook.db")) as gb:
        manual = [g.manual_score for s in gb.assignment_submissions(corpus.MODULE)
                  for n in s.notebooks for g in n.grades]
    assert 100 in manual
    assert file_digests(subs / "victim") != victim_before
    assert listener.received == [b"attack_network"]
    assert (out / targets.planted).is_file() and (home / targets.planted).is_file()
    # what the attacks stole, in the files their kernels wrote next to the notebook (in the
    # grading root: without the sandbox the kernel runs there)
    loot = {p.name: p.read_text(errors="replace") for p in (out / "autograded").rglob("loot-*")}
    assert "loot-environ.txt" in loot and SECRET in loot["loot-environ.txt"]
    # the theft read the module's source notebook, solutions and hidden tests included
    assert "source_notebooks" in loot.get("loot-stolen.txt", "")
    hidden, _ = hidden_and_solution_lines(course)
    assert any(line.strip() in loot.get("loot-file.txt", "") for line in hidden
               if len(line.strip()) > 20)


def test_background_process_does_not_outlive_grading(graded: dict) -> None:
    running = []
    for entry in Path("/proc").iterdir():
        try:
            if corpus.LEFTOVER.encode() in (entry / "cmdline").read_bytes():
                running.append(entry.name)
        except OSError:
            continue
    assert running == []


def test_honest_not_flagged(graded: dict) -> None:
    for student in HONEST:
        assert graded["rows"][student]["flagged"] == "", graded["rows"][student]


def test_output_cut_in_autograded_notebook(graded: dict) -> None:
    nb = graded["out"] / "autograded" / "print_flood" / corpus.MODULE / "activations.ipynb"
    assert nb.stat().st_size < 1_000_000, nb.stat().st_size  # 100 MB were printed


def test_progress_and_summary(graded: dict) -> None:
    log = "\n".join(graded["log"])
    assert f"grade [{len(graded['cases'])}/{len(graded['cases'])}]" in log
    assert "about" in log and "left" in log
    assert "flagged for review" in log and "failed   os_exit" in log


def test_feedback_hides_hidden_tests(graded: dict, course: Course) -> None:
    from coursekit.grading.execution.hidetests import leaked_lines
    from coursekit.leaks import secrets_of

    hidden = list(secrets_of(json.loads(
        (course.root / "source_notebooks" / corpus.MODULE / "activations.ipynb").read_text()
    )).hidden)
    assert len(hidden) > 10
    pages = list((graded["out"] / "feedback").rglob("*.html"))
    assert len(pages) >= len(HONEST)
    for page in pages:
        assert leaked_lines(page.read_text(), hidden) == [], page


def test_serial_gives_the_same_gradebook(graded: dict, course: Course,
                                         tmp_path: Path) -> None:
    subs = tmp_path / "subs"
    for student in HONEST:
        (subs / student).mkdir(parents=True)
        os.symlink(graded["subs"] / student / corpus.MODULE, subs / student / corpus.MODULE)
    out = tmp_path / "serial"
    # workers=0: in this process, with kernels started the usual way; the corpus run used
    # two workers whose kernels were forked from their fork servers
    grade(course, subs, out=out, modules=[corpus.MODULE], workers=0,
          overrides=corpus.LIMITS, log=lambda s: None)
    serial = cell_scores("sqlite:///" + str(out / "gradebook.db"), list(HONEST))
    parallel = cell_scores("sqlite:///" + str(graded["out"] / "gradebook.db"), list(HONEST))
    assert len(serial) == len(corpus.TESTS) * len(HONEST)
    assert serial == parallel


def test_killed_worker_loses_nothing(graded: dict, course: Course, tmp_path: Path) -> None:
    module = next(m for m in course.modules() if m.folder == corpus.MODULE)
    groot = prepare_root(course, tmp_path / "g", [module], log=lambda s: None,
                         overrides=corpus.LIMITS)
    bundle = write_bundle(course, [module], groot.root / "workers" / "bundle")
    add_gradebook(bundle, make_template(groot, [module], groot.root / "workers" / "t.db"))
    jobs = [Job(s, module, graded["subs"] / s / corpus.MODULE / "activations.ipynb")
            for s in HONEST]
    lines: list[str] = []
    pool = Pool(groot, bundle, 2)
    killed: list[int] = []

    def kill_one() -> None:  # kill the first worker as soon as it is busy
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not killed:
            if pool.running and pool.pids:
                time.sleep(1.0)  # mid-way through its notebook
                os.kill(pool.pids[0], signal.SIGKILL)
                killed.append(pool.pids[0])
            time.sleep(0.1)

    killer = threading.Thread(target=kill_one)
    killer.start()
    try:
        results = pool.run(jobs, answer_store(groot, lines.append, deadlines.policy(course)))
    finally:
        pool.close()
    killer.join()
    assert killed, "no worker was killed"
    assert any("died" in line and "graded again" in line for line in lines), lines
    scores = {r.student: (r.score, r.status) for r in results}
    assert scores == {s: (graded["cases"][s].score, "graded") for s in HONEST}
    got = cell_scores(groot.db_url, list(HONEST))
    assert got == cell_scores("sqlite:///" + str(graded["out"] / "gradebook.db"), list(HONEST))


#: The corpus cases graded again on Dask: one of each way a run ends (a score, a time limit,
#: a dead kernel, a test cell put back, a flood of output, a process left running, a file
#: that is no notebook) and every attack on what a worker machine holds; the rest differ only
#: inside the kernel, which is the same on a Dask worker.
ON_DASK = {"honest_full", "honest_partial", "notebook_limit", "os_exit", "segfault",
           "deleted_tests", "print_flood", "background_process", "not_json"}


def gradebook_cells(db_url: str) -> dict[tuple[str, str, str], float | None]:
    """(student, assignment, grade cell) -> score, for every submission in a gradebook."""
    from coursekit import nbg

    out: dict[tuple[str, str, str], float | None] = {}
    with nbg.gradebook(db_url, "tinytorch") as gb:
        for assignment in gb.assignments:
            for sub in gb.assignment_submissions(assignment.name):
                for nb in sub.notebooks:
                    for g in nb.grades:
                        out[(sub.student_id, assignment.name, g.name)] = g.score
    return out


def test_dask_cluster_grades_as_local(graded: dict, course: Course, tmp_path: Path,
                                      tmp_path_factory: pytest.TempPathFactory) -> None:
    """The hostile corpus (the cases of ON_DASK and every attack), graded on a Dask cluster
    (the real `dask scheduler` and two `dask worker` commands on 127.0.0.1, each isolated
    as a machine of its own without the course folder, see daskcluster.py); one worker is
    killed mid-run and another joins. The gradebook is local grading's, cell by cell, and
    so is grades.csv."""
    from daskcluster import DaskCluster

    subs = tmp_path / "subs"
    subs.mkdir()
    cases = {s: c for s, c in graded["cases"].items()
             if s in ON_DASK or s.startswith("attack_")}
    assert ON_DASK <= set(cases), "a case named in ON_DASK is not in the corpus"
    for student in cases:
        (subs / student).symlink_to(graded["subs"] / student)
    out = tmp_path / "dask"
    lines: list[str] = []
    with DaskCluster(tmp_path / "cluster",
                     hide=[course.root, tmp_path_factory.getbasetemp()]) as dc:

        def log(line: str) -> None:  # kill w1 once workers have graded 3 submissions
            lines.append(line)
            worker_results = [x for x in lines if x.startswith("grade [")
                              and x.split(": ", 1)[1].split()[1] != "missing"]
            if len(worker_results) == 3 and "w1" in dc.procs:
                dc.kill("w1")
                dc.start_worker("w3")

        dc.start_scheduler()
        w1 = dc.start_worker("w1")
        dc.start_worker("w2")
        dc.wait_for_workers(2)
        seen = dc.run_isolated(w1, "import json, os\n"
                               f"print(json.dumps(os.listdir({str(course.root)!r})))\n"
                               f"print(os.path.exists({str(subs)!r}))\n"
                               "try:\n    import coursekit\nexcept ImportError:\n"
                               "    print('no course package')\n")
        assert set(json.loads(seen.splitlines()[0])) <= {".venv"}, seen
        assert seen.splitlines()[1:] == ["False", "no course package"], seen
        grade(course, subs, out=out, modules=[corpus.MODULE], overrides=corpus.LIMITS,
              scheduler=dc.address, log=log)
    text = "\n".join(lines)
    assert "left" in text and "was lost while grading" in text, text
    assert len(re.findall(r"Dask worker tcp://\S+ ready", text)) == 3, text  # w1, w2, w3
    # the corpus was graded locally by the fixture
    expected = {k: v for k, v in gradebook_cells(
        "sqlite:///" + str(graded["out"] / "gradebook.db")).items() if k[0] in cases}
    assert len(expected) > 5 * len(cases)
    # How far a notebook gets before its whole-notebook limit runs out depends on how fast
    # the machine is at that moment: such a submission is compared by what the limit
    # guarantees (status and reason below), not cell by cell.
    timed = {s for s, case in cases.items()
             if any("whole notebook" in part for part in case.reason)}
    assert timed, "the corpus has a case stopped by the notebook time limit"
    got_cells = gradebook_cells("sqlite:///" + str(out / "gradebook.db"))
    assert {k: v for k, v in got_cells.items() if k[0] not in timed} == {
        k: v for k, v in expected.items() if k[0] not in timed}
    fields = ("score", "max_score", "status", "reason", "flagged", "sandboxed")

    def row(r: dict[str, str]) -> dict[str, str]:
        # a process left running is named by its command line, which starts with the
        # worker's Python as it was started there (`.venv/bin/python` or `python3`)
        out = {f: re.sub(r"\S*/bin/python3?\b", "PYTHON", r[f]) for f in fields}
        if r["student"] in timed and r["assignment"] == "02_activations":
            assert "limit for the whole notebook" in out["reason"], out
            out["score"] = "timed"
            out["reason"] = "stopped by the whole-notebook limit"
        return out

    want = {(r["student"], r["assignment"]): row(r)
            for r in graded["rows"].values() if r["student"] in cases}
    got = {(r["student"], r["assignment"]): row(r)
           for r in csv.DictReader((out / "grades.csv").open())}
    assert got == want
    # the same feedback pages, none showing a hidden test of its module
    from coursekit.grading.execution.hidetests import leaked_lines
    from coursekit.leaks import secrets_of

    def pages(root: Path) -> set[tuple[str, str]]:
        return {(p.parent.parent.name, p.parent.name) for p in (root / "feedback").rglob("*.html")}

    assert pages(out) == {p for p in pages(graded["out"]) if p[0] in cases}
    module = next(m for m in course.modules() if m.folder == corpus.MODULE)
    hidden = list(secrets_of(json.loads(module.source_notebook.read_text())).hidden)
    assert [p for p in (out / "feedback").rglob("*.html")
            if leaked_lines(p.read_text(), hidden)] == []
    assert list(tmp_path.rglob(graded["targets"].planted)) == []
