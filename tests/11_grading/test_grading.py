"""Grading a class: the hostile corpus, parallel == serial, a worker killed mid-run (slow).

The corpus (tests/11_grading/corpus.py, module 02) is graded once, with 2 workers, in a
module-scoped fixture; each expected score is written next to its submission there.
"""

from __future__ import annotations

import csv
import os
import signal
import sys
import threading
import time
from pathlib import Path

import pytest

from coursekit.course import Course
from coursekit.grading.grade import grade
from coursekit.grading.results import Job
from coursekit.grading.root import prepare_root
from coursekit.grading.pool import Pool

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


@pytest.fixture(scope="module")
def graded(course: Course, tmp_path_factory: pytest.TempPathFactory) -> dict:
    subs = tmp_path_factory.mktemp("corpus")
    cases = corpus.write(course, subs)
    out = tmp_path_factory.mktemp("grading")
    lines: list[str] = []
    results = grade(course, subs, out=out, modules=[corpus.MODULE], workers=2,
                    overrides=corpus.LIMITS, log=lines.append)
    rows = {r["student"]: r for r in csv.DictReader((out / "grades.csv").open())}
    return {"cases": {c.student: c for c in cases}, "subs": subs, "out": out, "log": lines,
            "results": {r.student: r for r in results}, "rows": rows}


def test_corpus_scores(graded: dict) -> None:
    rows = graded["rows"]
    assert set(rows) == set(graded["cases"])
    wrong = []
    for student, case in graded["cases"].items():
        row = rows[student]
        if (float(row["score"]), row["status"], row["max_score"]) != (case.score, case.status,
                                                                      "11"):
            wrong.append(f"{student}: got {row['score']}/{row['max_score']} {row['status']} "
                         f"({row['reason']}), expected {case.score} {case.status}")
        wrong += [f"{student}: reason lacks {s!r}: {row['reason']}"
                  for s in case.reason if s not in row["reason"]]
        wrong += [f"{student}: flagged lacks {s!r}: {row['flagged']}"
                  for s in case.flagged if s not in row["flagged"]]
    assert not wrong, "\n".join(wrong)


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
    import json

    from coursekit.grading.feedback import leaked_lines
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
    assert len(serial) == 5 * len(HONEST)
    assert serial == parallel


def test_killed_worker_loses_nothing(graded: dict, course: Course, tmp_path: Path) -> None:
    module = next(m for m in course.modules() if m.folder == corpus.MODULE)
    groot = prepare_root(course, tmp_path / "g", [module], log=lambda s: None,
                         overrides=corpus.LIMITS)
    jobs = [Job(s, module, graded["subs"] / s / corpus.MODULE / "activations.ipynb")
            for s in HONEST]
    pool = Pool(groot, [module], 2, log=lambda s: None)
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
    results = pool.run(jobs)
    killer.join()
    assert killed, "no worker was killed"
    scores = {r.student: (r.score, r.status) for r in results}
    assert scores == {s: (graded["cases"][s].score, "graded") for s in HONEST}
    got = cell_scores(groot.db_url, list(HONEST))
    assert got == cell_scores("sqlite:///" + str(graded["out"] / "gradebook.db"), list(HONEST))
