"""``course badges``: the Binder and Colab links of the student repository."""

from __future__ import annotations

from pathlib import Path

from coursekit.authoring.student_repository import StudentRepository
from coursekit.course import Course
from coursekit.publishing.badges import (
    BADGES_END,
    BADGES_START,
    binder_url,
    colab_url,
    module_title,
    render_badges,
    write_badges,
)

REPO = StudentRepository(slug="uni-x/dl-course", branch="spring")


def test_links() -> None:
    # the forms mybinder.org and Colab document for a GitHub repository
    assert (binder_url(REPO, "release/03_layers/layers.ipynb")
            == "https://mybinder.org/v2/gh/uni-x/dl-course/spring"
               "?urlpath=lab/tree/release/03_layers/layers.ipynb")
    assert (colab_url(REPO, "release/01_tensor/tensor.ipynb")
            == "https://colab.research.google.com/github/uni-x/dl-course/blob/spring/"
               "release/01_tensor/tensor.ipynb")


def test_block_covers_the_released_modules(course: Course) -> None:
    through = course.modules()[2]
    block = render_badges(course, REPO, through)
    assert block.startswith(BADGES_START) and block.endswith(BADGES_END)
    assert "urlpath=lab/tree/release/03_layers/layers.ipynb" in block
    assert block.count("colab-badge.svg") == 3
    assert "| 03 Layers |" in block and "04_losses" not in block
    assert module_title(course.modules()[4]) == "DataLoader"


def test_write_into_a_markdown_file(course: Course, tmp_path: Path) -> None:
    page = tmp_path / "course-page.md"
    page.write_text("# Deep learning, spring\n\nWelcome.\n")
    block = render_badges(course, REPO, course.modules()[0])
    assert write_badges(page, block)
    text = page.read_text()
    assert text.startswith("# Deep learning, spring\n\n" + block + "\n\nWelcome.")
    assert not write_badges(page, block), "same block: file unchanged"
    newer = render_badges(course, REPO, course.modules()[1])
    assert write_badges(page, newer)
    assert page.read_text().count(BADGES_START) == 1 and newer in page.read_text()
