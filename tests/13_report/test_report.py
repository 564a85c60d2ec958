"""``course report`` on a synthetic class (fast: nothing is graded): every number on the page
and in its CSV files against values computed independently (``expected.py``), the planted
test first under "check the prose", message grouping, the point-biserial correlation, that
the report never imports the grading machinery nor writes the gradebook, and bad input."""

from __future__ import annotations

import csv
import hashlib
import shutil
import json
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coursekit.cli import main
from coursekit.course import Course
from coursekit.report import write_report
from coursekit.report.analysis import PROSE_MIN, PROSE_SHARE, point_biserial
from coursekit.report.messages import normalise

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import expected  # noqa: E402
import synthetic  # noqa: E402

REPO = HERE.parents[1]
PLANTED = "layers_test_03"


def _class(root: Path, **changes: object) -> str:
    spec = synthetic.Spec(students=48, modules=synthetic.standard_modules(3, 6), seed=7,
                          flagged=0.04, planted={PLANTED: 0.9})
    for key, value in changes.items():
        setattr(spec, key, value)
    return synthetic.make_class(root, spec)


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("class") / "grading"
    url = _class(root)
    out = root.parent / "report"
    write_report(Course(REPO), out=out, grading=root, log=lambda s: None)
    return {"root": root, "url": url, "out": out}


def test_every_number_on_the_page_and_in_the_csv_files(small: dict) -> None:
    exp = expected.gather(small["root"], small["url"], synthetic.COURSE_ID)
    facts = expected.check_report(small["out"], exp, REPO)
    # the synthetic class has every kind of row, so that none of the checks is empty
    assert facts["late"] and facts["flagged"] and facts["behind"] and facts["prose"]
    assert any(it.unread == 0 and it.groups for it in facts["items"])
    assert any(r is not None and r < 0.5 for r in (it.r for it in facts["items"]))


def test_the_planted_test_is_first_under_check_the_prose(small: dict) -> None:
    page = expected.read_page(small["out"] / "report.html")
    first = page.tables["prose"].rows[0]
    assert (first[0], first[1], first[2]) == ("1", "03_layers", PLANTED)
    # most strong students fail it (it was planted to be failed by 90% of the able ones)
    assert float(first[7]) >= 75
    rows = list(csv.DictReader((small["out"] / "report-items.csv").open()))
    planted = next(r for r in rows if r["cell"] == PLANTED)
    assert planted["check_prose_rank"] == "1"
    listed = [r for r in rows if r["check_prose_rank"]]
    assert all(int(r["strong_failing"]) >= PROSE_MIN
               and float(r["strong_fail_share"]) >= PROSE_SHARE for r in listed)


def test_the_page_needs_nothing_from_the_network(small: dict) -> None:
    text = (small["out"] / "report.html").read_text()
    assert "http://" not in text and "https://" not in text
    page = expected.read_page(small["out"] / "report.html")
    assert len(page.images) == 5
    assert all(img["src"].startswith("data:image/png;base64,") for img in page.images)
    assert all(img.get("alt") for img in page.images)
    for link in page.links:  # every link is within the page or a file beside it
        assert link.startswith("#") or (small["out"] / link).is_file(), link


def test_a_spreadsheet_does_not_run_a_flag_reason(small: dict) -> None:
    rows = list(csv.DictReader((small["out"] / "report-flagged.csv").open()))
    reasons = [r["reasons"] for r in rows if "cmd" in r["reasons"]]
    assert reasons and all(r.startswith("'") or not r.startswith("=") for r in reasons)
    assert all(not r["reasons"].startswith(("=", "+", "@")) for r in rows)


def test_messages_with_other_numbers_group_together() -> None:
    assert normalise("expected 3, got 4") == normalise("expected 3, got 5") \
        == "expected #, got #"
    assert normalise("expected 3.5e-3, got -0.25") == "expected #, got #"
    assert normalise("shapes (3, 4) and (5,) not aligned") == "shapes (#) and (#,) not aligned"
    assert normalise("array([1., 2., 3.]) != array([1., 2.])") == "array([#]) != array([#])"
    # numbers inside names stay: float32 is not float64
    assert normalise("dtype float32, expected float64") == "dtype float32, expected float64"
    assert normalise("<Tensor at 0x7f3a2b> is not 0x10") == "<Tensor at 0x#> is not 0x#"


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="0123456789 .,-+eExabc_()[]:", max_size=40))
def test_message_patterns_follow_the_written_rule(text: str) -> None:
    assert normalise(text) == expected.pattern(text)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(0, 40)), min_size=2, max_size=30))
def test_point_biserial_is_pearsons_correlation(pairs: list[tuple[bool, int]]) -> None:
    passed = np.array([p for p, _ in pairs])
    rest = np.array([float(r) for _, r in pairs])
    got = point_biserial(passed, rest)
    if passed.all() or not passed.any() or rest.std() == 0:
        assert got is None
    else:
        assert got == pytest.approx(np.corrcoef(passed.astype(float), rest)[0, 1], abs=1e-9)


def test_the_report_imports_no_grading_machinery(small: dict) -> None:
    script = textwrap.dedent(f"""
        import sys
        import coursekit.report
        from coursekit.course import Course
        from pathlib import Path
        coursekit.report.write_report(Course({str(REPO)!r}), out=Path({str(small['out'])!r})
                                      / "again", grading=Path({str(small['root'])!r}),
                                      log=lambda s: None)
        bad = sorted(m for m in sys.modules if m.split(".")[0] in ("nbconvert", "nbclient")
                     or m.startswith(("coursekit.grading.dispatch",
                                      "coursekit.grading.execution", "coursekit.lms",
                                      "coursekit.authoring", "jupyter_client")))
        print(",".join(bad) or "none")
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          cwd=REPO, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "none"
    assert (small["out"] / "again" / "report.html").is_file()


def test_the_gradebook_is_only_read(tmp_path: Path) -> None:
    root = tmp_path / "grading"
    _class(root, students=12, notebooks=False, feedback=False)
    db = root / "gradebook.db"
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    assert main(["--root", str(REPO), "report", "--grading", str(root)]) == 0
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before
    assert sorted(p.name for p in root.iterdir() if p.name.startswith("report")) == sorted(
        ["report.html", *(f"report-{n}.csv" for n in (
            "modules", "histogram", "items", "messages", "times", "flagged", "students",
            "behind"))])


# -- bad input: one line, exit code 1 (or a page that says what is missing) ----------------

def _fails(capsys: pytest.CaptureFixture, *args: str) -> str:
    code = main(["--root", str(REPO), "report", *args])
    err = capsys.readouterr().err
    assert code == 1, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("course report: error: ")
    return lines[0]


def test_no_grading_root(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    line = _fails(capsys, "--grading", str(tmp_path / "nowhere"))
    assert "nowhere: no such folder" in line
    line = _fails(capsys, "--grading", str(tmp_path))
    assert "not a grading root" in line and "course grade" in line


def test_missing_gradebook_is_not_created(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    root = tmp_path / "grading"
    _class(root, students=5, notebooks=False, feedback=False)
    (root / "gradebook.db").unlink()
    line = _fails(capsys, "--grading", str(root))
    assert "gradebook.db: no such file" in line
    assert not (root / "gradebook.db").exists()
    (root / "gradebook.db").write_bytes(b"")
    assert "the file is empty" in _fails(capsys, "--grading", str(root))
    sqlite3.connect(root / "gradebook.db").execute("CREATE TABLE other (x int)").connection \
        .commit()
    assert "not an nbgrader gradebook" in _fails(capsys, "--grading", str(root))


def test_gradebook_without_assignments(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from coursekit import nbg

    url = "sqlite:///" + str(tmp_path / "empty.db")
    nbg.create_gradebook(url)
    root = tmp_path / "grading"
    _class(root, students=5, notebooks=False, feedback=False)
    line = _fails(capsys, "--grading", str(root), "--db-url", url)
    assert "holds no" in line and "course grade" in line


def test_unreachable_database(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    root = tmp_path / "grading"
    _class(root, students=5, notebooks=False, feedback=False)
    line = _fails(capsys, "--grading", str(root), "--db-url",
                  f"postgresql://teacher:secret@127.0.0.1:{port}/gradebook")
    assert "cannot open the database" in line and "secret" not in line
    assert "not a database URL" in _fails(capsys, "--grading", str(root), "--db-url", "nope")


def test_a_module_without_submissions(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    root = tmp_path / "grading"
    url = _class(root, students=6, notebooks=False, feedback=False)
    with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:  # nobody handed in 02
        aid = conn.execute("SELECT id FROM assignment WHERE name = '02_activations'").fetchone()
        subs = [r[0] for r in conn.execute(
            "SELECT id FROM submitted_assignment WHERE assignment_id = ?", aid)]
        nbs = [r[0] for r in conn.execute(
            f"SELECT id FROM submitted_notebook WHERE assignment_id IN "
            f"({','.join('?' * len(subs))})", subs)]
        conn.execute(f"DELETE FROM grade WHERE notebook_id IN ({','.join('?' * len(nbs))})",
                     nbs)
        conn.execute(f"DELETE FROM submitted_notebook WHERE id IN "
                     f"({','.join('?' * len(nbs))})", nbs)
        conn.execute("DELETE FROM submitted_assignment WHERE assignment_id = ?", aid)
    line = _fails(capsys, "--grading", str(root), "--module", "02")
    assert "no submissions of 02_activations" in line
    # among others: a page that says so
    assert main(["--root", str(REPO), "report", "--grading", str(root)]) == 0
    out = capsys.readouterr().out
    assert "02_activations: no submissions in the gradebook yet" in out
    text = (root / "report.html").read_text()
    assert "02_activations: no submissions in the gradebook yet" in text
    # a module the gradebook does not know at all, next to one it knows
    assert main(["--root", str(REPO), "report", "--grading", str(root), "-m", "01",
                 "-m", "08"]) == 0
    assert "08_training: not in the gradebook yet" in capsys.readouterr().out
    line = _fails(capsys, "--grading", str(root), "--module", "08")
    assert "holds no assignment 08_training" in line
    assert "no such module" in _fails(capsys, "--grading", str(root), "--module", "42")


def test_no_grades_csv_and_no_notebooks(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    root = tmp_path / "grading"
    url = _class(root, students=10, notebooks=False, feedback=False)
    (root / "grades.csv").unlink()
    assert main(["--root", str(REPO), "report", "--grading", str(root)]) == 0
    text = (root / "report.html").read_text()
    assert "grades.csv is missing" in text and "No autograded notebooks" in text
    exp = expected.gather(root, url, synthetic.COURSE_ID, rows_from_csv=False)
    expected.check_report(root, exp, REPO)


def test_out_folder_inside_the_course_is_refused(small: dict,
                                                 capsys: pytest.CaptureFixture) -> None:
    line = _fails(capsys, "--grading", str(small["root"]), "--out", str(REPO / "docs" / "x"))
    assert "inside the tracked folder docs/" in line
    assert not (REPO / "docs" / "x").exists()


def test_help_names_every_option(capsys: pytest.CaptureFixture) -> None:
    assert main(["report", "--help"]) == 0
    text = capsys.readouterr().out
    for option in ("--out", "--module", "--grading", "--db-url"):
        assert option in text


def test_failure_messages_come_from_the_first_error_output(small: dict) -> None:
    rows = list(csv.DictReader((small["out"] / "report-messages.csv").open()))
    assert rows and not any("not the one to use" in r["example"] for r in rows)
    # the same count as the notebooks hold, cell by cell
    counted: dict[tuple[str, str], int] = {}
    for nb_path in (small["root"] / "autograded").glob("*/*/*.ipynb"):
        module = nb_path.parent.name
        for cell in json.loads(nb_path.read_text())["cells"]:
            gid = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
            if any(o["output_type"] == "error" for o in cell.get("outputs", [])):
                counted[(module, gid)] = counted.get((module, gid), 0) + 1
    from_csv: dict[tuple[str, str], int] = {}
    for r in rows:
        if not r["pattern"].startswith("(failed without"):
            key = (r["module"], r["cell"])
            from_csv[key] = from_csv.get(key, 0) + int(r["count"])
    # a cell scored by hand keeps its error output but counts as passed
    assert all(from_csv.get(k, 0) <= v for k, v in counted.items())
    assert sum(from_csv.values()) >= sum(counted.values()) - 3


def test_after_course_demo_the_default_is_the_demo_class(tmp_path: Path) -> None:
    course_root = tmp_path / "course"
    (course_root / "modules").mkdir(parents=True)
    _class(course_root / "grading" / "demo", students=6, notebooks=False, feedback=False)
    lines: list[str] = []
    page = write_report(Course(course_root), log=lines.append)
    assert page == course_root / "grading" / "demo" / "report.html"
    assert "no module file modules/01_tensor/" in "\n".join(lines)
    (course_root / "grading" / "nbgrader_config.py").write_text("c = get_config()\n")
    with pytest.raises(Exception, match="names no gradebook"):  # a term's root comes first
        write_report(Course(course_root), log=lines.append)


def test_a_gradebook_without_its_grading_root(tmp_path: Path,
                                              capsys: pytest.CaptureFixture) -> None:
    course_root = tmp_path / "course"
    (course_root / "modules").mkdir(parents=True)
    shutil.copy(REPO / "grader_config.py", course_root / "grader_config.py")
    url = _class(tmp_path / "elsewhere", students=8, notebooks=False, feedback=False)
    line = _fails_in(capsys, course_root, "--db-url", url)
    assert "--out: needed when there is no grading root" in line
    out = tmp_path / "page"
    assert main(["--root", str(course_root), "report", "--db-url", url, "--out", str(out)]) == 0
    text = (out / "report.html").read_text()
    assert "No grading root" in text
    assert len(list(csv.DictReader((out / "report-students.csv").open()))) == 8


def _fails_in(capsys: pytest.CaptureFixture, root: Path, *args: str) -> str:
    code = main(["--root", str(root), "report", *args])
    err = capsys.readouterr().err
    assert code == 1 and len(err.strip().splitlines()) == 1, err
    return err.strip()
