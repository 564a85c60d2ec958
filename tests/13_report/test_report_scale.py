"""A class of 2,000 students x 8 modules (synthetic: 192,000 cell scores), its gradebook on
SQLite and on a real PostgreSQL server started and stopped here (slow): the report is
written from both, its CSV files are the same byte for byte, and its counts agree with
``grades.csv``. How long it takes is for ``bench/report_bench.py``, not for a test."""

from __future__ import annotations

import csv
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from coursekit.course import Course
from coursekit.report import write_report

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "11_grading"))
import expected  # noqa: E402
import pgserver  # noqa: E402
import synthetic  # noqa: E402

pytestmark = pytest.mark.slow
REPO = HERE.parents[1]
SPEC = dict(students=2000, modules=synthetic.standard_modules(8, 12), seed=11,
            notebooks=False, feedback=False, planted={"losses_test_04": 0.8})
CSV_FILES = ("modules", "histogram", "items", "messages", "times", "flagged", "students",
             "behind")


@pytest.fixture(scope="module")
def server() -> Iterator[pgserver.Server]:
    pgserver.skip_or_fail_without_server()
    srv = pgserver.start()
    try:
        yield srv
    finally:
        pgserver.stop(srv)


@pytest.fixture(scope="module")
def reports(server: pgserver.Server, tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = {}
    base = tmp_path_factory.mktemp("scale")
    for kind in ("sqlite", "postgresql"):
        root = base / kind
        url = server.create_database("gradebook") if kind == "postgresql" else None
        synthetic.make_class(root, synthetic.Spec(**SPEC), url)
        out[kind] = write_report(Course(REPO), grading=root, log=lambda s: None)
    return out


def test_the_report_is_written_from_both(reports: dict) -> None:
    for page in reports.values():
        parsed = expected.read_page(page)
        assert len(parsed.tables["students"].rows) == 2000
        assert len(parsed.images) == 5
        assert [r[0] for r in parsed.tables["prose"].rows[:1]] == ["1"]
        assert parsed.tables["prose"].rows[0][2] == "losses_test_04"


def test_sqlite_and_postgresql_give_the_same_numbers(reports: dict) -> None:
    for name in CSV_FILES:
        a = (reports["sqlite"].parent / f"report-{name}.csv").read_bytes()
        b = (reports["postgresql"].parent / f"report-{name}.csv").read_bytes()
        assert a == b, name


def test_counts_agree_with_grades_csv(reports: dict) -> None:
    folder = reports["postgresql"].parent
    rows = list(csv.DictReader((folder / "grades.csv").open()))
    graded = Counter(r["assignment"] for r in rows if r["status"] == "graded")
    missing = Counter(r["assignment"] for r in rows if r["status"] == "missing")
    late = Counter(r["assignment"] for r in rows if r["late"])
    full = Counter(r["assignment"] for r in rows
                   if r["status"] == "graded" and float(r["score"]) >= float(r["max_score"]))
    modules = list(csv.DictReader((folder / "report-modules.csv").open()))
    assert len(modules) == 8
    for m in modules:
        name = m["module"]
        assert (int(m["students"]), int(m["submitted"]), int(m["missing"]),
                int(m["late"]), int(m["full"])) == (
            2000, graded[name], missing[name], late[name], full[name])
        scores = [float(r["score"]) for r in rows
                  if r["assignment"] == name and r["status"] == "graded"]
        assert float(m["mean"]) == pytest.approx(sum(scores) / len(scores), abs=0.006)
