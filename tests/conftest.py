"""Suite-wide: the slowest test files run first.

With pytest-xdist (``-n auto --dist loadfile``, see pyproject.toml) each test file goes to one
process in the order collected; a long file collected last would run alone at the end while
the other processes idle. Measured with ``pytest -n 0 --durations=50`` (seconds, serial):
"""

from __future__ import annotations

import pytest

SLOWEST_FIRST = (
    "11_grading/test_grading.py",  # 143: the hostile corpus, locally and on Dask
    "10_milestones/test_mine.py",  # ~150: a student repository exported, milestones run
    "09_student/test_student_browser.py",  # 76: JupyterLab in Chromium
    "00_pipeline/test_check.py",  # 61: course check on the course
    "13_report/test_report_example.py",  # 56: the example class graded, then reported
    "13_report/test_report_scale.py",  # 55: 2,000 students on SQLite and PostgreSQL
    "12_publishing/test_published_notebooks.py",  # 54
    "15_service/test_service.py",  # 48: the grading service over HTTP, PostgreSQL gradebook
    "11_grading/test_dask.py",  # 42
    "11_grading/test_postgres.py",  # 39
    "11_grading/test_resume.py",  # 35
    "15_service/test_browser_submit.py",  # 28: Submit in JupyterLab in Chromium
    "15_service/test_recovery.py",  # 26: kill -9 and a restart
    "11_grading/test_forkserver.py",  # 24
    "15_service/test_dask_service.py",  # 20: the service on a Dask cluster
)


def _rank(item: pytest.Item) -> int:
    path = item.path.as_posix()
    for rank, name in enumerate(SLOWEST_FIRST):
        if path.endswith(name):
            return rank
    return len(SLOWEST_FIRST)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Stable sort: the files above first, slowest first; the rest in their usual order."""
    items.sort(key=_rank)
