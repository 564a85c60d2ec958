"""``course publish`` does not hand out a module's reference code while that module still
takes submissions (its due date plus the late window of course.toml [late], or a student's
extension), naming the module and the date, unless ``--force``, which the commit records."""

from __future__ import annotations

import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from termtools import REPO, Backend, hand_in, make_course, settings

from coursekit.cli import main
from coursekit.course import Course, CourseError
from coursekit.publishing.publish import publish
from coursekit.schedule import policy_from, window_end

SLUG = '[student_repository]\nslug = "my-university/term-2026"\nthrough = "02"\n'


@pytest.fixture(scope="module")
def course(tmp_path_factory: pytest.TempPathFactory) -> Course:
    """The two-module course with a student repository to publish to, built and released."""
    from coursekit.authoring.build import build
    from coursekit.authoring.release import release

    c = make_course(tmp_path_factory.mktemp("publish") / "course")
    shutil.copy(REPO / "pyproject.toml", c.root / "pyproject.toml")  # publish reads it
    shutil.copytree(REPO / "binder", c.root / "binder")  # and the student image
    for tool in (REPO / "tinytorch").glob("*.py"):  # the student's tools in the package
        if tool.name != "__init__.py":
            shutil.copy(tool, c.root / "tinytorch" / tool.name)
    (c.root / "course.toml").write_text(SLUG)
    build(c, log=lambda s: None)
    release(c, log=lambda s: None)
    return c


def test_the_late_window_by_policy() -> None:
    due = datetime(2026, 3, 2, 12, 0)
    # 25 % a started day: day 3 late costs 75 %, day 4 100 %: worth something until due + 3 d
    assert window_end(due, policy_from({"penalty_per_day": 25})) == datetime(2026, 3, 5, 12)
    # 30 %: days 1-3 cost 30, 60, 90 %; day 4 is capped at 100 %; with 15 minutes of grace
    assert window_end(due, policy_from({"penalty_per_day": 30, "grace_minutes": 15})) == \
        datetime(2026, 3, 5, 12, 15)
    assert window_end(due, policy_from({"policy": "zero", "grace_minutes": 10})) == \
        datetime(2026, 3, 2, 12, 10)
    # late work that always keeps something: no end
    assert window_end(due, policy_from({"penalty_per_day": 10, "max_penalty": 50})) is None
    assert window_end(due, policy_from({"policy": "none"})) is None


def test_publish_waits_for_the_late_window(course: Course, tmp_path: Path) -> None:
    late = SLUG + "\n[due]\n01_demo = 2026-03-02T12:00:00\n\n[late]\npenalty_per_day = 25\n"
    dest = tmp_path / "student"
    with settings(course, late):
        with pytest.raises(CourseError) as info:
            publish(course, dest, now=datetime(2026, 3, 5, 11, 59), log=lambda s: None)
        assert ("01_demo takes submissions until 2026-03-05 12:00 UTC (due 2026-03-02 12:00 "
                "UTC, then the late window of [late])") in str(info.value)
        assert not dest.exists()  # refused before anything was written
        done = publish(course, dest, now=datetime(2026, 3, 5, 12, 1), log=lambda s: None)
        assert done.commit
        # module 02's own code is not handed out: its window does not matter yet
        done = publish(course, dest, "01", now=datetime(2026, 3, 2, 0, 0), log=lambda s: None)
        assert done.commit


def test_publish_refuses_on_the_command_line_unless_forced(course: Course, tmp_path: Path,
                                                           capfd) -> None:
    due = (datetime.now(UTC) - timedelta(days=1)).replace(tzinfo=None, microsecond=0)
    end = due + timedelta(days=9)  # 10 % a day: the 10th started day costs it all
    late = (SLUG + f"\n[due]\n01_demo = {due.isoformat()}\n\n[late]\npenalty_per_day = 10\n")
    dest = tmp_path / "student"
    with settings(course, late):
        assert main(["--root", str(course.root), "publish", str(dest)]) == 1
        err = capfd.readouterr().err
        assert f"01_demo takes submissions until {end:%Y-%m-%d %H:%M} UTC" in err, err
        assert "--force" in err and len(err.strip().splitlines()) == 1
        assert not dest.exists()
        assert main(["--root", str(course.root), "publish", str(dest), "--force"]) == 0
    message = subprocess.run(["git", "-C", str(dest), "log", "-1", "--format=%B"],
                             capture_output=True, text=True, check=True).stdout
    assert message.startswith("Publish modules 01-02 (package 01)")
    assert f"Published with --force while 01_demo takes submissions until {end:%Y-%m-%d %H:%M}" \
        in message, message


@pytest.mark.slow
def test_a_students_extension_keeps_the_module_open(course: Course, backend: Backend,
                                                    tmp_path: Path, capfd) -> None:
    late = SLUG + "\n[due]\n01_demo = 2026-03-02T12:00:00\n\n[late]\npolicy = \"zero\"\n"
    root = course.root / "grading"  # the grading root publish reads extensions from
    subs = tmp_path / "subs"
    hand_in(course, subs, "ada", "01_demo")
    try:
        with settings(course, late):
            assert main(["--root", str(course.root), "grade", "--submissions", str(subs),
                         "-j", "0", "--no-feedback", "-m", "01", *backend.args()]) == 0
            assert main(["--root", str(course.root), "extend", "ada", "01", "--days",
                         "2"]) == 0
            with pytest.raises(CourseError) as info:
                publish(course, tmp_path / "student", now=datetime(2026, 3, 4, 11, 0),
                        log=lambda s: None)
            assert ("01_demo takes submissions until 2026-03-04 12:00 UTC (due 2026-03-02 "
                    "12:00 UTC with a student's extension of 2d") in str(info.value)
            assert publish(course, tmp_path / "student", now=datetime(2026, 3, 4, 12, 1),
                           log=lambda s: None).commit
    finally:
        shutil.rmtree(root, ignore_errors=True)
