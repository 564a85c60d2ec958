"""An LMS round trip: a Canvas and a Moodle download collected into the submissions layout,
graded, exported in the LMS's grade-import layout, feedback bundled for upload (slow).

The downloads are made here from the example class, named as the LMSs name files (see
coursekit/lms/collect.py for where the layouts are documented).
"""

from __future__ import annotations

import csv
import json
import shutil
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from coursekit import nbg
from coursekit.cli import main
from coursekit.course import Course
from coursekit.grading.grade import collect_jobs, looks_like, misnamed_hint

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples" / "submissions"


def points_possible(folder: str) -> int:
    """The points of a module: the sum over the graded cells of its source notebook."""
    nb = json.loads(next((REPO / "source_notebooks" / folder).glob("*.ipynb")).read_text())
    return sum(c["metadata"].get("nbgrader", {}).get("points", 0) for c in nb["cells"]
               if c["metadata"].get("nbgrader", {}).get("grade"))
ROSTER = """student,name,email,canvas_id,sis_user_id,sis_login_id,section
ada_complete,Ada Complete,ada@uni.example,1001,S1,ada,A
ben_blank,Ben Blank,ben@uni.example,1002,S2,ben,A
cy_partial,Cy Partial,cy@uni.example,1003,S3,cy,B
dee_corrupt,Dee Corrupt,dee@uni.example,1004,S4,dee,B
"""
WHEN = {"ada": (2026, 3, 1, 10, 0, 0), "ben": (2026, 3, 1, 11, 30, 0),
        "cy_old": (2026, 3, 1, 9, 0, 0), "cy": (2026, 3, 2, 8, 15, 0)}


def _nb(student: str, folder: str) -> bytes:
    name = folder.split("_", 1)[1]
    return (EXAMPLES / student / folder / f"{name}.ipynb").read_bytes()


def _add(zf: zipfile.ZipFile, name: str, data: bytes, when: tuple = (2026, 3, 1, 12, 0, 0)):
    zf.writestr(zipfile.ZipInfo(name, date_time=when), data)


@pytest.fixture(scope="module")
def term(tmp_path_factory: pytest.TempPathFactory) -> dict:
    tmp = tmp_path_factory.mktemp("lms")
    (tmp / "roster.csv").write_text(ROSTER)
    canvas = tmp / "canvas.zip"
    with zipfile.ZipFile(canvas, "w") as zf:
        _add(zf, "completeada_1001_5001_activations.ipynb", _nb("ada_complete",
                                                                "02_activations"), WHEN["ada"])
        _add(zf, "blankben_late_1002_5002_Activations.ipynb", _nb("ben_blank", "02_activations"),
             WHEN["ben"])
        _add(zf, "partialcy_1003_5003_activations.ipynb", b"{}", WHEN["cy_old"])
        _add(zf, "partialcy_1003_5013_activations-1.ipynb", _nb("cy_partial", "02_activations"),
             WHEN["cy"])
        _add(zf, "corruptdee_1004_5004_notes.txt", b"my notes")
        _add(zf, "stranger_1999_5999_activations.ipynb", b"{}")
        _add(zf, "weird.ipynb", b"{}")
    moodle = tmp / "moodle.zip"
    with zipfile.ZipFile(moodle, "w") as zf:
        _add(zf, "Ada Complete_77_assignsubmission_file_/tensor.ipynb",
             _nb("ada_complete", "01_tensor"), WHEN["ada"])
        _add(zf, "Ben Blank_78_assignsubmission_file_my tensor work.ipynb",
             _nb("ben_blank", "01_tensor"))
        _add(zf, "Cy Partial_79_assignsubmission_onlinetext_/onlinetext.html", b"<p>hi</p>")
        _add(zf, "Nobody Here_80_assignsubmission_file_/tensor.ipynb", b"{}")
    subs = tmp / "collected"
    root = ["--root", str(REPO)]
    codes = [main([*root, "collect", str(canvas), "--roster", str(tmp / "roster.csv"), "--out",
                   str(subs)]),
             main([*root, "collect", str(moodle), "--roster", str(tmp / "roster.csv"), "--out",
                   str(subs), "--module", "01", "--timezone", "Europe/Berlin"])]
    # dee hands in module 02 under a name an LMS download gives a second copy
    (subs / "dee_corrupt" / "02_activations").mkdir(parents=True)
    shutil.copy(EXAMPLES / "dee_corrupt" / "02_activations" / "activations.ipynb",
                subs / "dee_corrupt" / "02_activations" / "Activations (1).ipynb")
    out = tmp / "grading"
    code = main([*root, "grade", "--submissions", str(subs), "--out", str(out), "-m", "01",
                 "-m", "02", "-j", "2"])
    return {"tmp": tmp, "subs": subs, "out": out, "codes": [*codes, code]}


@pytest.mark.slow
def test_collect_places_notebooks_and_reports_the_rest(term: dict, capsys) -> None:
    assert term["codes"] == [0, 0, 0]
    subs: Path = term["subs"]
    placed = sorted(p.relative_to(subs).as_posix() for p in subs.rglob("*.ipynb"))
    assert placed == ["ada_complete/01_tensor/tensor.ipynb",
                      "ada_complete/02_activations/activations.ipynb",
                      "ben_blank/01_tensor/tensor.ipynb",
                      "ben_blank/02_activations/activations.ipynb",
                      "cy_partial/02_activations/activations.ipynb",
                      "dee_corrupt/02_activations/Activations (1).ipynb"]
    # the newer of cy's two uploads was kept
    assert (subs / "cy_partial" / "02_activations" / "activations.ipynb").read_bytes() == \
        _nb("cy_partial", "02_activations")
    stamp = (subs / "ada_complete" / "02_activations" / "timestamp.txt").read_text().strip()
    assert stamp == "2026-03-01 10:00:00.000000 UTC"
    # the Moodle times were read in Europe/Berlin (UTC+1 in March)
    stamp = (subs / "ada_complete" / "01_tensor" / "timestamp.txt").read_text().strip()
    assert stamp == "2026-03-01 09:00:00.000000 UTC"
    lms = json.loads((subs / "ben_blank" / "02_activations" / "lms.json").read_text())
    assert (lms["lms"], lms["user"], lms["late"], lms["prefix"]) == (
        "canvas", "1002", True, "blankben_late_1002_5002_")


def test_collect_report_names_every_file_not_placed(tmp_path: Path, capsys) -> None:
    (tmp_path / "roster.csv").write_text(ROSTER)
    download = tmp_path / "d.zip"
    with zipfile.ZipFile(download, "w") as zf:
        _add(zf, "completeada_1001_5001_activations.ipynb", b"{}")
        _add(zf, "partialcy_1003_5003_activations.ipynb", b"{}", WHEN["cy_old"])
        _add(zf, "partialcy_1003_5013_activations-1.ipynb", b"{}", WHEN["cy"])
        _add(zf, "corruptdee_1004_5004_notes.txt", b"my notes")
        _add(zf, "stranger_1999_5999_activations.ipynb", b"{}")
        _add(zf, "weird.ipynb", b"{}")
        _add(zf, "completeada_1001_5002_homework.ipynb", b"{}")
    assert main(["--root", str(REPO), "collect", str(download), "--roster",
                 str(tmp_path / "roster.csv"), "--out", str(tmp_path / "s")]) == 0
    out = capsys.readouterr().out
    for name, why in [
        ("partialcy_1003_5003_activations.ipynb", "an older notebook of cy_partial"),
        ("corruptdee_1004_5004_notes.txt", "is not a notebook"),
        ("stranger_1999_5999_activations.ipynb", "Canvas user id 1999"),
        ("weird.ipynb", "not named as a Canvas or Moodle download"),
        ("completeada_1001_5002_homework.ipynb", "no notebook of this course"),
    ]:
        line = next((li for li in out.splitlines() if name in li and why in li), None)
        assert line, f"{name}: {why} not reported in:\n{out}"
    assert "no notebook from 2 student(s) of the roster: ben_blank, dee_corrupt" in out


@pytest.mark.parametrize(("args", "message"), [
    (["collect", "NOPE.zip", "--roster", "ROSTER"], "NOPE.zip: no such file"),
    (["collect", "NOTZIP", "--roster", "ROSTER"], "not a zip archive"),
    (["collect", "NOTZIP", "--roster", "NOPE.csv"], "--roster"),
    (["collect", "NOTZIP", "--roster", "BADROSTER"], "BADROSTER:3: student 'b d'"),
    (["collect", "NOTZIP", "--roster", "ROSTER", "--timezone", "Mars/Base"],
     "--timezone Mars/Base: unknown time zone"),
    (["export", "--format", "canvas", "--grading", "NOWHERE"], "not a grading root"),
    (["feedback", "--zip", "--grading", "NOWHERE"], "not a grading root"),
])
def test_bad_input_gets_one_message(tmp_path: Path, capsys, args: list[str],
                                    message: str) -> None:
    (tmp_path / "roster.csv").write_text(ROSTER)
    (tmp_path / "bad.csv").write_text("student,name\nada,Ada\nb d,Bee Dee\n")
    (tmp_path / "notzip").write_text("hello")
    names = {"NOPE.zip": "nope.zip", "NOTZIP": "notzip", "ROSTER": "roster.csv",
             "NOPE.csv": "nope.csv", "BADROSTER": "bad.csv", "NOWHERE": "nowhere"}
    argv = [str(tmp_path / names[a]) if a in names else a for a in args]
    assert main(["--root", str(REPO), *argv]) == 1
    err = capsys.readouterr().err
    shown = message
    for key in sorted(names, key=len, reverse=True):
        shown = shown.replace(key, names[key])
    assert shown in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, err


@pytest.mark.slow
def test_misnamed_notebook_gets_a_hint(term: dict) -> None:
    rows = {(r["student"], r["assignment"]): r
            for r in csv.DictReader((term["out"] / "grades.csv").open())}
    dee = rows[("dee_corrupt", "02_activations")]
    assert dee["status"] == "missing"
    assert ("found dee_corrupt/02_activations/Activations (1).ipynb: rename or move it to "
            "dee_corrupt/02_activations/activations.ipynb") in dee["reason"]
    assert rows[("ada_complete", "02_activations")]["submitted"] == "2026-03-01T10:00:00Z"


def test_hints_and_loose_notebooks(tmp_path: Path) -> None:
    course = Course(REPO)
    tensor = next(m for m in course.modules() if m.name == "tensor")
    for name in ("Tensor.ipynb", "tensor (1).ipynb", "tensor-2.ipynb", "01_tensor.ipynb",
                 "TENSOR copy.ipynb"):
        assert looks_like(name, tensor), name
    for name in ("tensors.ipynb", "tensor.py", "layers.ipynb"):
        assert not looks_like(name, tensor), name
    subs = tmp_path / "subs"
    (subs / "ann" / "01_tensor").mkdir(parents=True)
    (subs / "ann" / "01_tensor" / "homework.ipynb").write_text("{}")
    (subs / "bob").mkdir()
    (subs / "bob" / "Tensor.ipynb").write_text("{}")
    (subs / "tensor.ipynb").write_text("{}")
    log: list[str] = []
    jobs = collect_jobs(subs, [tensor], log.append)
    hints = {j.student: j.hint for j in jobs}
    assert hints["ann"] == "01_tensor/ holds homework.ipynb, not tensor.ipynb"
    assert hints["bob"] == "found bob/Tensor.ipynb: rename or move it to bob/01_tensor/tensor.ipynb"
    assert any("ignoring tensor.ipynb at the top" in line for line in log)
    assert misnamed_hint(subs / "ann" / "02_x" / "x.ipynb", tensor, subs) == ""


@pytest.mark.slow
def test_export_layouts(term: dict, tmp_path: Path) -> None:
    out, roster = term["out"], term["tmp"] / "roster.csv"
    # the expected scores, read with nbgrader's own API: score less late penalty
    expected: dict[tuple[str, str], str] = {}
    with nbg.gradebook("sqlite:///" + str(out / "gradebook.db"), "tinytorch") as gb:
        for a in ("01_tensor", "02_activations"):
            for sub in gb.assignment_submissions(a):
                value = max(0.0, sub.score - sub.late_submission_penalty)
                expected[(sub.student_id, a)] = str(int(value)) if value.is_integer() \
                    else f"{value:.2f}"
    base = ["--root", str(REPO), "export", "--grading", str(out), "--roster", str(roster)]
    assert main([*base, "--format", "canvas", "--out", str(tmp_path / "c.csv")]) == 0
    rows = list(csv.reader((tmp_path / "c.csv").open()))
    assert rows[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "01_tensor",
                       "02_activations"]
    tensor_points = points_possible("01_tensor")
    activations_points = points_possible("02_activations")
    assert rows[1] == ["Points Possible", "", "", "", "", str(tensor_points),
                       str(activations_points)]
    by_id = {r[1]: r for r in rows[2:]}
    assert by_id["1001"][:5] == ["Complete, Ada", "1001", "S1", "ada", "A"]
    ids = {"1001": "ada_complete", "1002": "ben_blank", "1003": "cy_partial",
           "1004": "dee_corrupt"}
    for cid, student in ids.items():
        assert by_id[cid][5:] == [expected.get((student, "01_tensor"), "0"),
                                  expected.get((student, "02_activations"), "0")]
    assert main([*base, "--format", "moodle", "--out", str(tmp_path / "m.csv")]) == 0
    rows = list(csv.reader((tmp_path / "m.csv").open()))
    assert rows[0] == ["First name", "Last name", "ID number", "Email address", "01_tensor",
                       "02_activations"]
    assert rows[1][:4] == ["Ada", "Complete", "", "ada@uni.example"]
    assert main([*base, "--format", "csv", "--out", str(tmp_path / "p.csv")]) == 0
    rows = {r["student"]: r for r in csv.DictReader((tmp_path / "p.csv").open())}
    assert rows["ada_complete"]["total"] == str(tensor_points + activations_points)
    assert rows["ada_complete"]["max_total"] == str(tensor_points + activations_points)


@pytest.mark.slow
def test_feedback_archives(term: dict, tmp_path: Path) -> None:
    out = term["out"]
    base = ["--root", str(REPO), "feedback", "--zip", "--grading", str(out)]
    assert main([*base, "--out", str(tmp_path / "s")]) == 0
    with zipfile.ZipFile(tmp_path / "s" / "ada_complete.zip") as zf:
        assert sorted(zf.namelist()) == ["01_tensor/tensor.html",
                                         "02_activations/activations.html"]
        page = zf.read("02_activations/activations.html").decode()
    assert "hidden tests run here" in page
    assert not (tmp_path / "s" / "dee_corrupt.zip").exists()  # nothing graded, no page
    assert main([*base, "--layout", "canvas", "--submissions", str(term["subs"]), "--out",
                 str(tmp_path / "c")]) == 0
    with zipfile.ZipFile(tmp_path / "c" / "02_activations-canvas.zip") as zf:
        assert sorted(zf.namelist()) == ["blankben_late_1002_5002_activations.html",
                                         "completeada_1001_5001_activations.html",
                                         "partialcy_1003_5013_activations.html"]
    assert main([*base, "--layout", "moodle", "--submissions", str(term["subs"]), "--out",
                 str(tmp_path / "m")]) == 0
    with zipfile.ZipFile(tmp_path / "m" / "01_tensor-moodle.zip") as zf:
        assert sorted(zf.namelist()) == ["Ada Complete_77_assignsubmission_file_/tensor.html",
                                         "Ben Blank_78_assignsubmission_file_/tensor.html"]


def test_zip_extended_timestamp_is_utc() -> None:
    from coursekit.lms.collect import entry_time

    info = zipfile.ZipInfo("x", date_time=(2026, 1, 1, 0, 0, 0))
    when = int(datetime(2026, 3, 1, 10, 0, tzinfo=UTC).timestamp())
    info.extra = b"\x55\x54\x05\x00\x01" + when.to_bytes(4, "little")
    assert entry_time(info, UTC) == datetime(2026, 3, 1, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(("path", "want"), [
    # Canvas: [sortable name, LATE, user id] joined by "_", non-word characters dropped,
    # lower case; then the attachment id and the file's own name (lib/content_zipper.rb)
    ("lovelaceada_4711_99_tensor.ipynb", ("canvas", "lovelaceada", "4711", False,
                                          "tensor.ipynb")),
    ("lovelaceada_late_4711_99_Tensor (1).ipynb", ("canvas", "lovelaceada", "4711", True,
                                                   "Tensor (1).ipynb")),
    ("4711_99_tensor.ipynb", ("canvas", "", "4711", False, "tensor.ipynb")),  # anonymous
    # Moodle: "<Full Name>_<participant id>_assignsubmission_file_" then "/" (in folders)
    # or the file name (flat) (mod/assign/locallib.php, download_submissions)
    ("Ada Lovelace_77_assignsubmission_file_/tensor.ipynb", ("moodle", "Ada Lovelace", "77",
                                                             False, "tensor.ipynb")),
    ("Ada Lovelace_77_assignsubmission_file_tensor.ipynb", ("moodle", "Ada Lovelace", "77",
                                                            False, "tensor.ipynb")),
])
def test_lms_file_names(path: str, want: tuple) -> None:
    from coursekit.lms.collect import parse_entry

    e = parse_entry(path)
    assert e is not None and (e.lms, e.name, e.user, e.late, e.filename) == want
    assert path.startswith(e.prefix) and path == e.prefix + e.filename
