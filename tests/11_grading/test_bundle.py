"""The grading bundle and what travels with it: contents, packing, checks on arrival, the
pipe protocol, where a worker's files may land, fingerprints, worker versions."""

from __future__ import annotations

import io
import json
import sqlite3
import tarfile
from contextlib import closing
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from coursekit.course import Course, CourseError
from coursekit.grading.dispatch import station
from coursekit.grading.dispatch.bundle import (
    GRADEBOOK,
    BundledCourse,
    add_gradebook,
    digest,
    grader_digest,
    pack,
    submission_digest,
    write_bundle,
)
from coursekit.grading.records.gradebook import _forget_students
from coursekit.grading.dispatch.jobs import make_request, store_answer
from coursekit.grading.records.results import Job
from coursekit.grading.records.root import GradingRoot

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def course() -> Course:
    return Course(REPO)


@pytest.fixture
def bundle(course: Course, tmp_path: Path) -> Path:
    chosen = [m for m in course.modules() if m.folder in ("01_tensor", "03_layers")]
    folder = write_bundle(course, chosen, tmp_path / "bundle")
    (tmp_path / "t.db").write_bytes(b"an empty gradebook stands in here")
    add_gradebook(folder, tmp_path / "t.db")
    return folder


def test_bundle_holds_what_grading_needs_and_no_more(course: Course, bundle: Path) -> None:
    files = {p.relative_to(bundle).as_posix() for p in bundle.rglob("*") if p.is_file()}
    assert {"grader_config.py", "course.toml", "manifest.json", GRADEBOOK,
            "source_notebooks/01_tensor/tensor.ipynb", "source_notebooks/03_layers/layers.ipynb",
            "tinytorch/core/tensor.py", "coursekit/grading/execution/submission.py"} <= files
    # only the source notebooks of the modules graded; no module source, release notebook,
    # submission, gradebook of the course or test
    assert not [f for f in files if f.startswith(("source_notebooks/02", "modules/", "release/",
                                                  "examples/", "grading/", "tests/"))]
    assert not [f for f in files if "__pycache__" in f]
    opened = BundledCourse(bundle)
    assert [m.folder for m in opened.modules()] == [m.folder for m in course.modules()]
    layers = next(m for m in opened.modules() if m.folder == "03_layers")
    assert layers.source_notebook.is_file() and layers.export.is_file()


def test_rewriting_a_bundle_keeps_unchanged_files(course: Course, bundle: Path) -> None:
    kept = bundle / "coursekit" / "grading" / "dispatch" / "station.py"
    stale = bundle / "source_notebooks" / "03_layers" / "layers.ipynb"
    before = kept.stat().st_mtime_ns
    write_bundle(course, [m for m in course.modules() if m.folder == "01_tensor"], bundle)
    assert kept.stat().st_mtime_ns == before
    assert not stale.exists()  # a module no longer graded is gone from it


def test_pack_is_deterministic_and_unpack_checks_the_digest(bundle: Path,
                                                            tmp_path: Path) -> None:
    data = pack(bundle)
    assert pack(bundle) == data
    name = digest(data)
    folder = station.unpack(data, name, tmp_path / "worker")
    files = sorted(p.relative_to(bundle).as_posix() for p in bundle.rglob("*") if p.is_file())
    got = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")
                 if p.is_file() and p.name != station.READY)
    assert got == files
    assert (folder / "grader_config.py").read_bytes() == (bundle / "grader_config.py").read_bytes()
    assert station.unpack(data, name, tmp_path / "worker") == folder  # once
    damaged = data[:-40] + bytes(40)
    with pytest.raises(ValueError, match="arrived damaged"):
        station.unpack(damaged, name, tmp_path / "other")
    assert not (tmp_path / "other").exists() or not any((tmp_path / "other").iterdir())


def test_unpack_refuses_paths_outside_the_folder(tmp_path: Path) -> None:
    import gzip

    raw = io.BytesIO()
    with gzip.GzipFile(fileobj=raw, mode="wb") as gz, tarfile.open(fileobj=gz, mode="w") as tar:
        info = tarfile.TarInfo("../escaped.txt")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"hi"))
    data = raw.getvalue()
    with pytest.raises(ValueError, match="not a plain file inside it"):
        station.unpack(data, digest(data), tmp_path / "worker")
    assert not (tmp_path / "escaped.txt").exists()


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text() | st.binary(),
                    lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(max_size=5), inner, max_size=4), max_leaves=20))
def test_pipe_encoding_round_trips(value: object) -> None:
    line = json.dumps(station.encode(value))
    assert station.decode(json.loads(line)) == value


def test_template_gradebook_keeps_no_student(tmp_path: Path) -> None:
    from datetime import datetime

    from coursekit import nbg

    path = tmp_path / "gb.db"
    nbg.create_gradebook(f"sqlite:///{path}")
    with nbg.gradebook(f"sqlite:///{path}") as gb:
        gb.add_assignment("01_tensor", duedate=datetime(2026, 2, 6, 23, 59))
        gb.add_student("ada", first_name="Ada")
        gb.add_submission("01_tensor", "ada")
    _forget_students(path)
    with closing(sqlite3.connect(path)) as db:
        counts = {t: db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]  # noqa: S608
                  for t in ("student", "submitted_assignment", "assignment")}
        raw = path.read_bytes()
    assert counts == {"student": 0, "submitted_assignment": 0, "assignment": 1}
    assert b"Ada" not in raw  # gone from the file, not only from the table


def test_a_worker_writes_only_its_submissions_folders(course: Course, tmp_path: Path) -> None:
    module = course.modules()[0]
    groot = GradingRoot(course, tmp_path, f"sqlite:///{tmp_path / 'gb.db'}")
    job = Job("ada", module, tmp_path / "in.ipynb")
    for bad in ("autograded/ben/01_tensor/tensor.ipynb", "autograded/ada/01_tensor/../../x",
                "gradebook.db", "feedback/ada/02_activations/a.html", "/etc/passwd"):
        with pytest.raises(CourseError, match="not one of ada 01_tensor's"):
            store_answer(groot, job, {"result": {}, "detail": None, "files": {bad: b"x"}})
    assert not (tmp_path / "x").exists() and not (tmp_path / "autograded").exists()


def test_requests_carry_bytes_and_nothing_to_grade_stays_home(course: Course,
                                                              tmp_path: Path) -> None:
    module = course.modules()[0]
    folder = tmp_path / "ada" / module.folder
    folder.mkdir(parents=True)
    (folder / module.notebook_name).write_bytes(b"\xff not even text")
    (folder / "timestamp.txt").write_text("2026-02-07 10:00:00 UTC")
    request, answer = make_request(Job("ada", module, folder / module.notebook_name))
    assert answer is None and request is not None
    assert request["notebook"] == b"\xff not even text"
    assert request["timestamp"] == b"2026-02-07 10:00:00 UTC"
    request, answer = make_request(Job("ben", module, tmp_path / "ben" / module.folder / "x"))
    assert request is None and answer is not None
    assert answer["result"]["status"] == "missing"
    request, answer = make_request(Job("../ada", module, folder / module.notebook_name))
    assert request is None and answer is not None
    assert answer["result"]["status"] == "invalid"


def test_fingerprints_follow_what_a_grade_depends_on(course: Course) -> None:
    module = course.modules()[1]
    options = {"overrides": {}, "sandbox": True, "feedback": True}
    grader = grader_digest(course, module, options)
    assert grader == grader_digest(course, module, dict(options))
    assert grader != grader_digest(course, module, {**options, "feedback": False})
    assert grader != grader_digest(course, module, {
        **options, "overrides": {"LimitedExecute": {"notebook_timeout": 12}}})
    assert grader != grader_digest(course, course.modules()[2], options)
    same = submission_digest(grader, b"{}", None)
    assert same == submission_digest(grader, b"{}", None)
    assert len({same, submission_digest(grader, b"{ }", None),
                submission_digest(grader, b"{}", b"2026-02-07"),
                submission_digest(grader, None, None),
                submission_digest(grader_digest(course, module, {**options, "sandbox": False}),
                                  b"{}", None)}) == 5


def test_versions_and_their_differences() -> None:
    mine = station.versions()
    assert set(mine) == {"Python", "nbgrader", "NumPy", "course package"}
    assert mine["nbgrader"] == "0.9.6"  # pinned in requirements.txt
    theirs = {**mine, "NumPy": "1.26.4"}
    assert station.differences(theirs, mine) == [
        f"NumPy 1.26.4 (the instructor has {mine['NumPy']})"]
    assert station.differences(mine, mine) == []


def test_course_package_identity_follows_its_files(tmp_path: Path) -> None:
    package = tmp_path / "coursekit"
    (package / "grading").mkdir(parents=True)
    (package / "__init__.py").write_text('__version__ = "0.3.1"\n')
    (package / "grading" / "x.py").write_text("A = 1\n")
    first = station.package_identity(package)
    assert first.startswith("0.3.1 (files ")
    (package / "grading" / "x.py").write_text("A = 2\n")
    assert station.package_identity(package) != first


def test_only_grading_settings_of_course_toml_count(tmp_path: Path) -> None:
    """Raising ``through`` for the student repository grades nothing again; a module's due
    date, or the late policy, does."""
    import shutil

    for part in ("modules", "source_notebooks", "tinytorch"):
        shutil.copytree(REPO / part, tmp_path / part)
    shutil.copy(REPO / "grader_config.py", tmp_path)
    toml = tmp_path / "course.toml"
    course = Course(tmp_path)
    tensor, layers = course.modules()[0], course.modules()[2]
    options = {"overrides": {}, "sandbox": True, "feedback": True}

    def digests(text: str) -> tuple[str, str]:
        toml.write_text(text)
        return grader_digest(course, tensor, options), grader_digest(course, layers, options)

    base = digests('[student_repository]\nthrough = "02"\n')
    assert digests('[student_repository]\nthrough = "05"\n') == base
    due = digests(f'[due]\n{layers.folder} = 2026-03-02T12:00:00\n')
    assert due[0] == base[0] and due[1] != base[1]
    late = digests("[late]\npenalty_per_day = 10\n")
    assert late[0] != base[0] and late[1] != base[1]
