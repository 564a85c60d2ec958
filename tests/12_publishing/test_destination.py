"""Where ``course publish`` writes: idempotent, one commit per change, and it refuses any
folder it did not make. Also the command line and the placeholder slug."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from pubtools import TEST_SLUG, git, tree_bytes, write_settings

from coursekit.course import Course, CourseError
from coursekit.publishing.publish import publish


def _quiet(line: str) -> None:
    pass


def test_publishing_again_changes_nothing(course: Course, published: dict[str, Path],
                                          tmp_path: Path) -> None:
    """Same tree, no new commit, nothing written, clean status."""
    dest = tmp_path / "student"
    shutil.copytree(published["08"], dest)
    before, head = tree_bytes(dest), git(dest, "rev-parse", "HEAD")
    stamps = {p: p.stat().st_mtime_ns for p in dest.rglob("*") if ".git" not in p.parts}
    result = publish(course, dest, "08", log=_quiet)
    assert result.commit is None and result.written == [] and result.removed == []
    assert tree_bytes(dest) == before and git(dest, "rev-parse", "HEAD") == head
    assert {p: p.stat().st_mtime_ns for p in dest.rglob("*") if ".git" not in p.parts} == stamps
    assert not git(dest, "status", "--porcelain").strip()


def test_release_of_more_modules_is_one_new_commit(course: Course, published: dict[str, Path],
                                                   tmp_path: Path) -> None:
    """03 -> 05 adds notebooks 04, 05 and the package of 03, 04 in one commit; back to 03
    removes them again; hand edits of a published file are put back."""
    dest = tmp_path / "student"
    shutil.copytree(published["03"], dest)
    first = published["03"]
    result = publish(course, dest, "05", log=_quiet)
    assert result.commit and git(dest, "rev-list", "--count", "HEAD").strip() == "2"
    assert {"release/04_losses/losses.ipynb", "release/05_dataloader/dataloader.ipynb",
            "tinytorch/core/layers.py", "tinytorch/core/losses.py"} <= set(result.written)
    (dest / "README.md").write_text("edited by hand\n")
    (dest / "notes.txt").write_text("not ours\n")
    result = publish(course, dest, "03", log=_quiet)
    assert "release/04_losses/losses.ipynb" in result.removed and "notes.txt" in result.removed
    assert tree_bytes(dest) == tree_bytes(first), "back at 03: the tree of a first publish"
    assert git(dest, "rev-list", "--count", "HEAD").strip() == "3"


def test_refuses_a_folder_it_did_not_make(course: Course, tmp_path: Path) -> None:
    dest = tmp_path / "someone"
    dest.mkdir()
    (dest / "thesis.tex").write_text("precious\n")
    with pytest.raises(CourseError, match=r"not empty \(thesis.tex\) and not a student "
                       r"repository made by `course publish`"):
        publish(course, dest, "03", log=_quiet)
    assert [p.name for p in dest.iterdir()] == ["thesis.tex"], "something was written"
    file = tmp_path / "a-file"
    file.write_text("x")
    with pytest.raises(CourseError, match="not a folder"):
        publish(course, file, "03", log=_quiet)
    with pytest.raises(CourseError, match="inside the instructor's course root"):
        publish(course, course.root / "student", "03", log=_quiet)
    assert not (course.root / "student").exists()


def test_an_empty_clone_is_fine_and_gets_the_branch(course: Course, tmp_path: Path) -> None:
    """A fresh clone of an empty GitHub repository holds only .git (maybe on another
    default branch): publish writes into it, on course.toml's branch."""
    dest = tmp_path / "clone"
    subprocess.run(["git", "init", "-q", "-b", "trunk", str(dest)], check=True)
    result = publish(course, dest, "03", log=_quiet)
    assert result.commit
    assert git(dest, "symbolic-ref", "--short", "HEAD").strip() == "main"


def test_refuses_a_student_repository_on_another_branch(course: Course,
                                                         published: dict[str, Path],
                                                         tmp_path: Path) -> None:
    dest = tmp_path / "student"
    shutil.copytree(published["03"], dest)
    git(dest, "switch", "-q", "-c", "draft")
    with pytest.raises(CourseError, match="on 'draft'.*branch is 'main'"):
        publish(course, dest, "03", log=_quiet)


def _course_cli(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "coursekit.cli", "--root", str(root), *args],
                          capture_output=True, text=True, timeout=300)


def test_command_line(course: Course, tmp_path: Path) -> None:
    """Progress on stdout, exit 0; a second run says nothing changed; errors exit 1 with one
    line naming the problem (no traceback)."""
    dest = tmp_path / "student"
    run = _course_cli(course.root, "publish", str(dest), "--through", "2")
    assert run.returncode == 0, run.stderr
    assert "leak guard:" in run.stdout and "commit" in run.stdout
    assert f"push https://github.com/{TEST_SLUG}.git main" in run.stdout
    again = _course_cli(course.root, "publish", str(dest), "--through", "02")
    assert again.returncode == 0 and "nothing written, no commit" in again.stdout
    bad = _course_cli(course.root, "publish", str(tmp_path / "x"), "--through", "09")
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
    assert "--through: '09' is not a module of this course" in bad.stderr
    assert not (tmp_path / "x").exists()
    badges = _course_cli(course.root, "badges", "--through", "03")
    assert badges.returncode == 0
    assert f"https://mybinder.org/v2/gh/{TEST_SLUG}/main?urlpath=lab/tree/release/03_layers/" \
        in badges.stdout
    assert "04_losses" not in badges.stdout


def test_placeholder_slug_stops_publish_and_badges(course: Course, tmp_path: Path) -> None:
    root = tmp_path / "course"
    shutil.copytree(course.root, root)
    write_settings(root, slug="your-org/tinytorch")
    for command in (["publish", str(tmp_path / "student")], ["badges"]):
        run = _course_cli(root, *command)
        assert run.returncode == 1, run.stdout
        assert "slug = 'your-org/tinytorch' is a placeholder" in run.stderr
        assert "Traceback" not in run.stderr
    assert not (tmp_path / "student").exists()


def test_settings_changed_after_the_release_stop_publish(course: Course,
                                                         tmp_path: Path) -> None:
    """course.toml names another repository than the notebooks' Colab cells install from:
    publishing would hand students notebooks that install the wrong package."""
    root = tmp_path / "course"
    shutil.copytree(course.root, root)
    write_settings(root, slug="another-org/tinytorch")
    with pytest.raises(CourseError, match="run `course build && course release`"):
        publish(Course(root), tmp_path / "student", "03", log=_quiet)
    assert not (tmp_path / "student").exists()
