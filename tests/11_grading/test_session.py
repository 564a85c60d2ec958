"""GradingSession as a library: what it refuses before a kernel starts, and one submission
graded in this process from bytes, with its record."""

from __future__ import annotations

from pathlib import Path

import pytest

from coursekit.course import Course, CourseError
from coursekit.grading.execution.submission import MAX_NOTEBOOK_BYTES
from coursekit.grading.records.results import RunRecord, Status
from coursekit.grading.session import GradingOptions, GradingSession, Submission

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "submissions" / "ada_complete" / "02_activations"


@pytest.fixture(scope="module")
def course() -> Course:
    return Course(REPO)


def test_a_notebook_over_the_size_limit_is_refused_before_any_kernel(
        course: Course, tmp_path: Path) -> None:
    module = next(m for m in course.modules() if m.folder == "02_activations")
    # valid JSON all the same: the size alone refuses it
    huge = b'{"cells": [], "pad": "' + b"x" * MAX_NOTEBOOK_BYTES + b'"}'
    session = GradingSession(course, tmp_path / "grading", modules=[module],
                             options=GradingOptions(workers=0), log=lambda _: None)
    request, result = session.request(Submission("ada", "02_activations", huge))
    assert request is None and result is not None
    assert result.status == Status.INVALID and result.score == 0
    assert "activations.ipynb is 20.0 MB" in result.reason
    assert f"at most {MAX_NOTEBOOK_BYTES // 2**20} MB" in result.reason
    request, result = session.request(Submission("../ada", "02_activations", b"{}"))
    assert request is None and result is not None and result.status == Status.INVALID
    assert "'../ada'" in result.reason
    with pytest.raises(CourseError, match="'09_nothing': not one this session grades"):
        session.module("09_nothing")


def test_one_submission_graded_in_this_process(course: Course, tmp_path: Path) -> None:
    module = next(m for m in course.modules() if m.folder == "02_activations")
    notebook = (EXAMPLE / "activations.ipynb").read_bytes()
    with GradingSession(course, tmp_path / "grading", modules=[module],
                        options=GradingOptions(workers=0), log=lambda _: None) as session:
        result = session.grade(Submission("ada", "02", notebook))
        # the same notebook cut to its first half: not JSON any more
        broken = session.grade(Submission("ben", "02", notebook[: len(notebook) // 2]))
    assert result.status == Status.GRADED, result.reason
    assert result.score == result.max_score > 0
    assert broken.status == Status.CORRUPT and broken.score == 0
    latest = RunRecord(tmp_path / "grading").latest()
    assert latest[("ada", "02_activations")].score == result.score
    assert latest[("ben", "02_activations")].status == Status.CORRUPT
    assert (tmp_path / "grading" / "autograded" / "ada" / "02_activations"
            / "activations.ipynb").is_file()
