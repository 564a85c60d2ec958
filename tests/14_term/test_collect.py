"""``course collect`` cannot misfile: a damaged archive writes nothing, a notebook lands only
under the module its name says (a ``--module`` the names contradict is refused), nothing
replaces another module's submission, a re-collect lists what it replaced, a roster without
the LMS's id column is named once; ``course export`` refuses to write an empty id column."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
from termtools import hand_in

from coursekit.cli import main
from coursekit.course import Course

ROSTER = "student,name,canvas_id\nada,Ada Archer,101\nbo,Bo Baker,102\n"
WHEN = (2026, 3, 1, 10, 0, 0)


def notebook(course: Course, folder: str, tag: str = "") -> bytes:
    """A module's release notebook, told apart from other copies by ``tag`` (its
    metadata)."""
    name = folder.split("_", 1)[1]
    nb = json.loads((course.root / "release" / folder / f"{name}.ipynb").read_text())
    nb["metadata"]["tag"] = tag
    return json.dumps(nb).encode()


def canvas_zip(path: Path, files: dict[str, bytes], when: tuple = WHEN,
               compression: int = zipfile.ZIP_STORED) -> Path:
    with zipfile.ZipFile(path, "w", compression) as zf:
        for name, data in files.items():
            zf.writestr(zipfile.ZipInfo(name, date_time=when), data, compression)
    return path


def collect(course: Course, download: Path, roster: Path, out: Path, *args: str) -> int:
    return main(["--root", str(course.root), "collect", str(download), "--roster", str(roster),
                 "--out", str(out), *args])


def files_under(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()} if folder.exists() else {}


@pytest.fixture
def roster(tmp_path: Path) -> Path:
    (tmp_path / "roster.csv").write_text(ROSTER)
    return tmp_path / "roster.csv"


def test_a_damaged_archive_writes_nothing(course: Course, roster: Path, tmp_path: Path,
                                          capfd) -> None:
    files = {"archerada_101_1_demo.ipynb": notebook(course, "01_demo", "ada"),
             "bakerbo_102_2_demo.ipynb": notebook(course, "01_demo", "bo") * 3}
    download = canvas_zip(tmp_path / "d.zip", files, compression=zipfile.ZIP_DEFLATED)
    with zipfile.ZipFile(download) as zf:
        second = zf.getinfo("bakerbo_102_2_demo.ipynb")
        start = second.header_offset + 30 + len(second.filename) + len(second.extra)
    raw = bytearray(download.read_bytes())
    middle = start + second.compress_size // 2
    raw[middle:middle + 16] = bytes(b ^ 0xFF for b in raw[middle:middle + 16])
    download.write_bytes(bytes(raw))
    out = tmp_path / "subs"
    assert collect(course, download, roster, out) == 1
    err = capfd.readouterr().err
    assert "damaged archive: bakerbo_102_2_demo.ipynb cannot be read" in err, err
    assert "nothing was written" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1 and files_under(out) == {}


def test_a_module_the_names_contradict_is_refused(course: Course, roster: Path,
                                                  tmp_path: Path, capfd) -> None:
    download = canvas_zip(tmp_path / "d.zip", {
        "archerada_101_1_demo.ipynb": notebook(course, "01_demo", "ada"),
        "bakerbo_102_2_Demo (1).ipynb": notebook(course, "01_demo", "bo")})
    out = tmp_path / "subs"
    assert collect(course, download, roster, out, "--module", "02") == 1
    err = capfd.readouterr().err
    assert ("--module 02: the notebooks in d.zip are named for 01_demo (01_demo: 2 of 2 "
            "notebook(s)), not 02_second; nothing was written") in err, err
    assert files_under(out) == {}
    assert collect(course, download, roster, out, "--module", "01") == 0
    assert sorted(files_under(out)) == ["ada/01_demo/demo.ipynb", "ada/01_demo/lms.json",
                                        "ada/01_demo/timestamp.txt", "bo/01_demo/demo.ipynb",
                                        "bo/01_demo/lms.json", "bo/01_demo/timestamp.txt"]


def test_a_stray_notebook_replaces_nothing_of_another_module(course: Course, roster: Path,
                                                             tmp_path: Path, capfd) -> None:
    out = tmp_path / "subs"
    real = hand_in(course, out, "ada", "02_second")  # ada's module 02, collected before
    before = files_under(out)
    download = canvas_zip(tmp_path / "d.zip", {
        "archerada_101_1_demo.ipynb": notebook(course, "01_demo", "ada"),
        "archerada_101_2_second.ipynb": notebook(course, "02_second", "stray"),
        "bakerbo_102_3_demo.ipynb": notebook(course, "01_demo", "bo")})
    assert collect(course, download, roster, out) == 0
    text = capfd.readouterr().out
    assert ("archerada_101_2_second.ipynb: 'second.ipynb' is named for 02_second, and this "
            "download is 01_demo's") in text, text
    assert {k: v for k, v in files_under(out).items() if k.startswith("ada/02")} == before
    assert real.read_bytes() == before["ada/02_second/second.ipynb"]
    assert (out / "bo" / "01_demo" / "demo.ipynb").is_file()
    assert not (out / "bo" / "02_second").exists()
    # without --module and names split evenly, the module is not guessed
    split = canvas_zip(tmp_path / "s.zip", {
        "archerada_101_1_demo.ipynb": notebook(course, "01_demo"),
        "bakerbo_102_2_second.ipynb": notebook(course, "02_second")})
    assert collect(course, split, roster, tmp_path / "other") == 1
    err = capfd.readouterr().err
    assert "named for several modules (01_demo: 1, 02_second: 1)" in err, err
    assert not (tmp_path / "other").exists()


def test_a_recollect_lists_what_it_replaced(course: Course, roster: Path, tmp_path: Path,
                                            capfd) -> None:
    out = tmp_path / "subs"
    first = {"archerada_101_1_demo.ipynb": notebook(course, "01_demo", "ada v1"),
             "bakerbo_102_2_demo.ipynb": notebook(course, "01_demo", "bo")}
    assert collect(course, canvas_zip(tmp_path / "a.zip", first), roster, out) == 0
    assert "replaced" not in capfd.readouterr().out
    second = dict(first)
    second["archerada_101_3_demo.ipynb"] = notebook(course, "01_demo", "ada v2")
    del second["archerada_101_1_demo.ipynb"]
    later = (2026, 3, 2, 9, 30, 0)
    with zipfile.ZipFile(tmp_path / "b.zip", "w") as zf:
        zf.writestr(zipfile.ZipInfo("archerada_101_3_demo.ipynb", date_time=later),
                    second["archerada_101_3_demo.ipynb"])
        zf.writestr(zipfile.ZipInfo("bakerbo_102_2_demo.ipynb", date_time=WHEN),
                    second["bakerbo_102_2_demo.ipynb"])
    assert collect(course, tmp_path / "b.zip", roster, out) == 0
    text = capfd.readouterr().out
    assert "collect: 1 notebook(s) collected before were replaced:" in text, text
    assert ("  ada/01_demo/demo.ipynb: submitted 2026-03-01 10:00:00.000000 UTC before, now "
            "2026-03-02 09:30:00.000000 UTC (archerada_101_3_demo.ipynb)") in text, text
    assert (out / "ada" / "01_demo" / "demo.ipynb").read_bytes() == \
        second["archerada_101_3_demo.ipynb"]


@pytest.mark.parametrize(("roster_text", "files", "message"), [
    ("student,name\nada,Ada Archer\n", {"archerada_101_1_demo.ipynb": b"{}"},
     "roster.csv has no canvas_id column: Canvas names the files of its download by user id"),
    ("student,name,canvas_id\nada,Ada Archer,\n", {"archerada_101_1_demo.ipynb": b"{}"},
     "roster.csv has an empty canvas_id column"),
    ("student,canvas_id\nada,101\n",
     {"Ada Archer_7_assignsubmission_file_/demo.ipynb": b"{}"},
     "roster.csv has no name column: Moodle names the files of its download by the "
     "student's full name"),
])
def test_a_roster_without_the_lms_id_is_named_once(course: Course, tmp_path: Path, capfd,
                                                   roster_text: str, files: dict,
                                                   message: str) -> None:
    (tmp_path / "roster.csv").write_text(roster_text)
    download = canvas_zip(tmp_path / "d.zip", {**files, "x_1_2_demo.ipynb": b"{}"}
                          if "canvas" in message else files)
    out = tmp_path / "subs"
    assert collect(course, download, tmp_path / "roster.csv", out) == 1
    err = capfd.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err
    assert files_under(out) == {}


@pytest.fixture(scope="module")
def graded(course: Course, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A grading root in which ada's module 01 is graded."""
    tmp = tmp_path_factory.mktemp("export")
    hand_in(course, tmp / "subs", "ada", "01_demo")
    assert main(["--root", str(course.root), "grade", "--submissions", str(tmp / "subs"),
                 "--out", str(tmp / "grading"), "-j", "0", "--no-feedback", "-m", "01"]) == 0
    return tmp / "grading"


@pytest.mark.slow
@pytest.mark.parametrize(("roster_text", "fmt", "message"), [
    ("student,name,sis_user_id\nada,Ada Archer,S1\n", "canvas",
     "has no canvas_id column: the ID column Canvas finds students by would be empty"),
    ("student,name,canvas_id\nada,Ada Archer,\n", "canvas", "has an empty canvas_id column"),
    ("student,name,canvas_id\nada,Ada Archer,101\nbo,Bo Baker,\n", "canvas",
     "1 student(s) without canvas_id or sis_user_id or sis_login_id (bo)"),
    ("student,name\nada,Ada Archer\n", "moodle", "no email or id_number values"),
])
def test_export_refuses_an_empty_id_column(course: Course, graded: Path, tmp_path: Path,
                                           capfd, roster_text: str, fmt: str,
                                           message: str) -> None:
    (tmp_path / "roster.csv").write_text(roster_text)
    capfd.readouterr()
    assert main(["--root", str(course.root), "export", "--format", fmt, "--grading",
                 str(graded), "--roster", str(tmp_path / "roster.csv")]) == 1
    err = capfd.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err
    assert not (graded / f"grades-{fmt}.csv").exists()
