"""``[student_repository]`` in ``course.toml``: read, checked, and used by the Colab cell."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from pubtools import REPO

from coursekit.authoring import student_repository as sr
from coursekit.authoring.build import build
from coursekit.authoring.colab import colab_setup_source, course_colab_source
from coursekit.course import Course, CourseError


def _course(tmp_path: Path, toml: str | None) -> Course:
    root = tmp_path / "course"
    (root / "modules" / "01_tensor").mkdir(parents=True)
    (root / "modules" / "01_tensor" / "tensor.py").write_text("# %%\nx = 1\n")
    (root / "modules" / "02_layers").mkdir()
    (root / "modules" / "02_layers" / "layers.py").write_text("# %%\nx = 1\n")
    if toml is not None:
        (root / "course.toml").write_text(toml)
    return Course(root)


def test_the_course_file_holds_the_placeholder() -> None:
    """The repository's own course.toml: the placeholder, main, through the last module."""
    repo = sr.read(Course(REPO))
    assert repo.is_placeholder and repo.branch == "main"
    assert repo.through == Course(REPO).modules()[-1].number


def test_defaults_without_the_file(tmp_path: Path) -> None:
    course = _course(tmp_path, None)
    repo = sr.read(course)
    assert (repo.slug, repo.branch, repo.through) == (sr.DEFAULT_SLUG, "main", None)
    assert repo.is_placeholder
    assert repo.through_module(course).folder == "02_layers"


def test_a_real_repository(tmp_path: Path) -> None:
    course = _course(tmp_path, '[student_repository]\nslug = "uni-x/dl-course"\n'
                     'branch = "spring-2026"\nthrough = 1\n')
    repo = sr.read(course)
    assert (repo.slug, repo.branch, repo.through) == ("uni-x/dl-course", "spring-2026", "01")
    assert not repo.is_placeholder
    repo.require_real("publish")  # does not raise


@pytest.mark.parametrize(("toml", "message"), [
    ('slug = "no-slash"', "slug = 'no-slash': expected a GitHub 'owner/name'"),
    ('slug = "a/b/c"', "expected a GitHub 'owner/name'"),
    ("slug = 3", "slug = 3: expected"),
    ('branch = "two words"', "branch = 'two words': expected a git branch name"),
    ('branch = "a..b"', "expected a git branch name"),
    ('through = "09"', "through: '09' is not a module of this course (modules: 01, 02)"),
    ("through = true", "is not a module number"),
    ('slg = "x/y"', "unknown key(s) slg (known: slug, branch, through)"),
])
def test_bad_settings_say_what_is_wrong(tmp_path: Path, toml: str, message: str) -> None:
    course = _course(tmp_path, f"[student_repository]\n{toml}\n")
    with pytest.raises(CourseError) as err:
        sr.read(course)
    assert message in str(err.value)
    assert "course.toml" in str(err.value)


def test_not_a_table(tmp_path: Path) -> None:
    with pytest.raises(CourseError, match="must be a table"):
        sr.read(_course(tmp_path, 'student_repository = "x/y"\n'))


@pytest.mark.parametrize("slug", ["your-org/tinytorch", "YOUR-ORG/x", "owner/course"])
def test_placeholder_owners(slug: str) -> None:
    repo = sr.StudentRepository(slug=slug)
    with pytest.raises(CourseError, match="is a placeholder"):
        repo.require_real("`course publish`")


def test_colab_cell_installs_from_the_settings(tmp_path: Path) -> None:
    course = _course(tmp_path, '[student_repository]\nslug = "uni-x/dl-course"\n'
                     'branch = "spring-2026"\n')
    source = course_colab_source(course)
    assert source == colab_setup_source("uni-x/dl-course", "spring-2026")
    assert '"tinytorch-course @ git+https://github.com/uni-x/dl-course@spring-2026"' in source
    # outside Colab it runs and does nothing
    done = subprocess.run([sys.executable, "-c", source], capture_output=True, text=True,
                          check=True)
    assert done.stdout == done.stderr == ""


def test_build_writes_the_colab_cell_of_the_settings(tmp_path: Path) -> None:
    """Changing course.toml and building again changes the cell in every notebook."""
    root = tmp_path / "course"
    shutil.copytree(REPO / "tests/00_pipeline/fixtures/course", root)
    shutil.copy2(REPO / "grader_config.py", root / "grader_config.py")
    (root / "course.toml").write_text('[student_repository]\nslug = "uni-x/demo"\n')
    course = Course(root)
    build(course, check_import=False, log=lambda _: None)
    text = (root / "source_notebooks/01_demo/demo.ipynb").read_text()
    assert "git+https://github.com/uni-x/demo@main" in text
